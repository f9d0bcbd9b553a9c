from django.shortcuts import render


def home(request):
    return render(request, "allauth_app/home.html")
