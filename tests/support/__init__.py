"""What the tests share, one copy each: no test module imports another, and conftest
files hold fixtures only (tests/architecture/test_tests.py checks both)."""
