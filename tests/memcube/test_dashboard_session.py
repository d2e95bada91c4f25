"""Dashboard sign-in sessions through memcube functions: who may sign in, what ends a session, CSRF."""

import os
import stat

import pytest

from memcube import auth, dashboard_session
from memcube.config import Settings
from memcube.errors import Forbidden, InvalidInput, Unauthorized
from memcube.models import ApiKeyCreate, Principal

ADMIN = Principal(key_id=None, tenant="default", scopes=frozenset({"read", "write", "admin"}), superuser=True)


@pytest.fixture()
def key(settings):
    return dashboard_session.signing_key(settings)


def new_key(conn, tenant, scopes):
    return auth.create_key(conn, ADMIN, ApiKeyCreate(tenant=tenant, scopes=scopes, name="k"))


def test_admin_keys_and_the_admin_token_sign_in_others_do_not(conn, settings, key, tenant):
    admin_key = new_key(conn, tenant, ["read", "admin"])
    cookie, session = dashboard_session.sign_in(conn, token=admin_key["token"], settings=settings, key=key)
    assert session.principal.tenant == tenant and session.actor == f"dashboard:key:{admin_key['id']}"
    opened = dashboard_session.open_session(conn, cookie=cookie, settings=settings, key=key)
    assert opened.principal == session.principal and opened.csrf == session.csrf and opened.key_name == "k"
    assert admin_key["token"] not in cookie

    _, boot = dashboard_session.sign_in(conn, token=settings.admin_token, settings=settings, key=key)
    assert boot.principal.superuser and boot.actor == "dashboard:admin-token" and boot.principal.tenant == "default"

    with pytest.raises(Forbidden):
        dashboard_session.sign_in(conn, token=new_key(conn, tenant, ["read", "write"])["token"], settings=settings,
                                  key=key)
    for wrong in ("", "mc_nope", admin_key["token"] + "x"):
        with pytest.raises(Unauthorized):
            dashboard_session.sign_in(conn, token=wrong, settings=settings, key=key)


def test_what_ends_a_session(conn, settings, key, tenant):
    admin_key = new_key(conn, tenant, ["admin"])
    cookie, _ = dashboard_session.sign_in(conn, token=admin_key["token"], settings=settings, key=key)
    other_key = dashboard_session.signing_key(settings.model_copy(update={"admin_token": "other"}))
    assert dashboard_session.open_session(conn, cookie=cookie, settings=settings, key=other_key) is None
    assert dashboard_session.open_session(conn, cookie=cookie + "x", settings=settings, key=key) is None
    assert dashboard_session.open_session(conn, cookie=None, settings=settings, key=key) is None
    auth.revoke_key(conn, ADMIN, admin_key["id"])
    assert dashboard_session.open_session(conn, cookie=cookie, settings=settings, key=key) is None

    cookie, _ = dashboard_session.sign_in(conn, token=settings.admin_token, settings=settings, key=key)
    dashboard_session.sign_out(conn, cookie=cookie, key=key)
    assert dashboard_session.open_session(conn, cookie=cookie, settings=settings, key=key) is None
    dashboard_session.sign_out(conn, cookie="forged.cookie", key=key)  # nothing to end, no error

    lasting, _ = dashboard_session.sign_in(conn, token=settings.admin_token, settings=settings, key=key,
                                           lifetime_seconds=60)
    assert dashboard_session.open_session(conn, cookie=lasting, settings=settings, key=key) is not None
    expired, _ = dashboard_session.sign_in(conn, token=settings.admin_token, settings=settings, key=key,
                                           lifetime_seconds=-1)
    assert dashboard_session.open_session(conn, cookie=expired, settings=settings, key=key) is None


def test_the_bootstrap_admin_switches_tenants_a_tenant_admin_cannot(conn, settings, key, tenant):
    cookie, session = dashboard_session.sign_in(conn, token=settings.admin_token, settings=settings, key=key)
    dashboard_session.switch_tenant(conn, cookie=cookie, key=key, session=session, tenant=tenant)
    assert dashboard_session.open_session(conn, cookie=cookie, settings=settings, key=key).principal.tenant == tenant
    for bad in ("", " ", "a\x00b", "x" * 257):
        with pytest.raises(InvalidInput):
            dashboard_session.switch_tenant(conn, cookie=cookie, key=key, session=session, tenant=bad)
    admin_key = new_key(conn, tenant, ["admin"])
    key_cookie, key_session = dashboard_session.sign_in(conn, token=admin_key["token"], settings=settings, key=key)
    with pytest.raises(Forbidden):
        dashboard_session.switch_tenant(conn, cookie=key_cookie, key=key, session=key_session, tenant="default")
    with pytest.raises(Forbidden):
        auth.list_tenants(conn, key_session.principal)
    assert tenant in auth.list_tenants(conn, ADMIN)


def test_csrf_tokens_are_per_session(conn, settings, key):
    _, one = dashboard_session.sign_in(conn, token=settings.admin_token, settings=settings, key=key)
    _, two = dashboard_session.sign_in(conn, token=settings.admin_token, settings=settings, key=key)
    dashboard_session.check_csrf(one, one.csrf)
    for wrong in (None, "", two.csrf, one.csrf[:-1]):
        with pytest.raises(Forbidden):
            dashboard_session.check_csrf(one, wrong)


def test_the_signing_key_is_configured_derived_or_kept_under_the_home(tmp_path):
    configured = Settings(dashboard_secret="s" * 32, admin_token="t" * 16, home=tmp_path)
    assert dashboard_session.signing_key(configured) == b"s" * 32
    derived = dashboard_session.signing_key(Settings(admin_token="t1" * 8, home=tmp_path))
    assert derived != dashboard_session.signing_key(Settings(admin_token="t2" * 8, home=tmp_path))
    assert derived == dashboard_session.signing_key(Settings(admin_token="t1" * 8, home=tmp_path / "elsewhere"))
    assert not (tmp_path / "dashboard_secret").exists()

    home = tmp_path / "home"
    kept = dashboard_session.signing_key(Settings(admin_token=None, home=home))
    assert kept == dashboard_session.signing_key(Settings(admin_token=None, home=home)) and len(kept) >= 48
    assert stat.S_IMODE(os.stat(home / "dashboard_secret").st_mode) == 0o600
    with pytest.raises(ValueError):
        Settings(dashboard_secret="too short")
