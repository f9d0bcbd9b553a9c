"""The adversarial suite: one test per attack, and a test for every line of SECURITY.md.

Each line of ../shared/SECURITY.md and the test that proves it:

The one-time code
- dead after at most 10 minutes: test_code_secrecy::test_a_code_is_dead_after_its_lifetime_*;
  longer lifetimes refused: tests/test_settings.py
- works once, replayed or in parallel: test_replay_and_race (both tests),
  test_api_attacks::test_an_api_code_works_once
- bound to the session; the upstream id never reaches the browser:
  test_sessions::test_a_code_started_in_one_session_is_refused_in_another,
  test_sessions::test_the_upstream_request_id_never_reaches_the_browser,
  test_api_attacks::test_the_request_id_is_not_the_providers_and_cannot_be_altered
- at least 6 digits by default, set at Vonage: test_code_secrecy::test_codes_have_six_digits_*;
  the parameter sent: tests/test_vonage_backend.py, tests/test_vonage_legacy_backend.py
- failed attempts capped per number, 3 wrong codes kill a request: test_code_guessing,
  test_api_attacks::test_wrong_codes_through_the_api_and_the_pages_share_one_cap
- never logged, never stored in plain text: test_code_secrecy::test_codes_and_full_numbers_*,
  test_code_secrecy::test_codes_are_never_stored_in_plain_text

Abuse and cost
- limits per IP, number, session; resend counts; 429 and nothing sent: test_client_ip,
  test_pumping::test_hammering_resend_and_call_*, tests/test_limits.py
- the real client IP, not X-Forwarded-For: test_client_ip
- counters in a shared, atomic cache: tests/test_settings.py (DEBUG off refuses others),
  tests/test_multiprocess.py (a limit holds across two servers)
- countries, number types, global caps: test_pumping

Accounts and sessions
- same answer, redirect and timing for registered and unknown numbers; no upstream call:
  test_enumeration, test_api_attacks (answers and timing alike)
- a password alone never authenticates a two-factor user: test_second_factor
- new session key and CSRF token at login, pending verification removed: test_sessions
- logout POST only, killed server side, no signed-cookie sessions: test_csrf, test_sessions
- step-up for phone change or removal and turning the second factor off: test_second_factor
- `next` stays on-site: test_open_redirect
- CSRF on every form, the API the only exemption: test_csrf
- `check --deploy` clean: tests/test_production_settings.py, tests/test_settings.py

The upstream fails
- explicit timeouts: test_upstream_failures (slow faults), tests/test_vonage_backend.py
- a clear message, never a 500, an upstream text, credential or code: test_upstream_failures,
  test_fuzzing, and the autouse guard in conftest.py that fails any test seeing a 500
- fail closed: test_upstream_failures::test_an_error_during_the_check_logs_nobody_in
- nothing lost: test_upstream_failures::test_nothing_is_lost_*,
  test_upstream_failures::test_a_failed_start_stores_nothing*
"""
