"""Load benchmark of the phone login (`make bench`); see bench/README.md."""
