"""What `import bpart_auth` loads: the providers' HTTP and OAuth stack only on first use.

Each check runs a fresh interpreter: in this one, other tests have loaded everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# What only sign-in with Google or Microsoft needs (and the breach check: requests).
PROVIDER_STACK = ("requests", "requests_oauthlib", "oauthlib", "msal", "urllib3", "google.auth")


def loaded_after(script: str) -> set[str]:
    """The modules loaded once `script` has run in a fresh interpreter."""
    code = textwrap.dedent(script) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def among(modules: set[str], packages: tuple[str, ...]) -> set[str]:
    """The packages of `packages` that `modules` holds, themselves or a submodule."""
    return {
        package
        for package in packages
        for module in modules
        if module == package or module.startswith(package + ".")
    }


def test_import_bpart_auth_loads_no_provider_stack_and_no_cryptography():
    modules = loaded_after("import bpart_auth")
    assert among(modules, PROVIDER_STACK) == set()
    assert among(modules, ("cryptography",)) == set()
    assert "bpart_auth.providers.google" not in modules
    assert "bpart_auth.providers.microsoft" not in modules


@pytest.mark.parametrize(
    ("module", "framework"),
    [
        ("bpart_auth.aio", "anyio"),
        ("bpart_auth.flask", "flask"),
        ("bpart_auth.starlette", "starlette"),
        ("bpart_auth.django", "django"),
    ],
)
def test_the_adapters_load_no_provider_stack(module, framework):
    pytest.importorskip(framework)
    modules = loaded_after(f"import {module}")
    assert module in modules
    assert among(modules, PROVIDER_STACK) == set()


def test_a_password_only_app_never_loads_the_provider_stack():
    modules = loaded_after(
        """
        from bpart_auth import Argon2Parameters, Auth, InvalidCredentials, MemoryStore
        cheap = Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1)
        auth = Auth(MemoryStore(), password_hashing=cheap)
        admin = auth.create_account(email="boss@example.com", password="correct horse battery")
        assert auth.passwords.sign_in("boss@example.com", "correct horse battery") == admin
        try:
            auth.passwords.sign_in("boss@example.com", "wrong horse battery staple")
        except InvalidCredentials:
            pass
        else:
            raise SystemExit("a wrong password signed in")
        """
    )
    assert among(modules, PROVIDER_STACK) == set()
    assert among(modules, ("cryptography",)) == set()  # no secret_key: nothing sealed


def test_a_secret_key_loads_cryptography_and_still_no_provider_stack():
    modules = loaded_after(
        """
        from bpart_auth import Auth, MemoryStore
        Auth(MemoryStore(), secret_key="a unit-test secret key of 32+ bytes")
        """
    )
    assert "cryptography.hazmat.primitives.ciphers.aead" in modules
    assert among(modules, PROVIDER_STACK) == set()


def test_using_google_loads_its_stack():
    modules = loaded_after(
        """
        import bpart_auth
        google = bpart_auth.GoogleProvider(client_id="app", client_secret="secret")
        assert google.name == "google"
        """
    )
    # oauthlib for the protocol, requests for HTTP; requests-oauthlib is not used at all.
    assert among(modules, ("requests", "requests_oauthlib", "oauthlib")) == {
        "requests",
        "oauthlib",
    }


def test_importing_microsoft_by_name_loads_its_stack():
    modules = loaded_after(
        """
        from bpart_auth import MicrosoftProvider
        MicrosoftProvider(client_id="app", client_secret="secret")
        """
    )
    assert "bpart_auth.providers.microsoft" in modules
    # oauthlib for the protocol, requests for HTTP; requests-oauthlib is not used at all.
    assert among(modules, ("requests", "requests_oauthlib", "oauthlib")) == {
        "requests",
        "oauthlib",
    }


def test_the_breach_check_loads_requests_when_made():
    modules = loaded_after(
        """
        from bpart_auth import PasswordPolicy, PwnedPasswords
        PasswordPolicy(breached=PwnedPasswords())
        """
    )
    assert "requests" in modules
    assert among(modules, ("requests_oauthlib", "oauthlib", "msal")) == set()


def test_a_lazy_name_is_the_class_of_its_module():
    from bpart_auth import GoogleProvider, MicrosoftProvider  # noqa: PLC0415
    from bpart_auth.providers import google, microsoft  # noqa: PLC0415

    assert GoogleProvider is google.GoogleProvider
    assert MicrosoftProvider is microsoft.MicrosoftProvider
    with pytest.raises(AttributeError, match="NoSuchProvider"):
        _ = __import__("bpart_auth").NoSuchProvider


def test_dir_lists_the_names_loaded_on_first_use():
    modules = loaded_after(
        """
        import bpart_auth
        names = dir(bpart_auth)
        assert {"GoogleProvider", "MicrosoftProvider", "SQLStore", "Auth"} <= set(names), names
        """
    )
    assert among(modules, PROVIDER_STACK) == set()  # listing a name does not load it
