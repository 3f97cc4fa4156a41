import ipaddress

from django.test import RequestFactory

from crm.http import axes_client_ip, client_ip


def test_it_uses_remote_addr_unless_behind_a_trusted_proxy(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9"
    )
    settings.TRUST_X_FORWARDED_FOR = False
    assert client_ip(request) == "10.0.0.2"
    settings.TRUST_X_FORWARDED_FOR = True
    assert client_ip(request) == "203.0.113.9"  # what our proxy saw, not what the client claims


def _request(remote, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_listed_proxies_are_walked_past_from_the_right(settings):
    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    # The visitor, then a CDN edge and our load balancer, both ours.
    request = _request("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.20.0.5")
    assert client_ip(request) == "203.0.113.9"
    # Not from one of our proxies: its X-Forwarded-For is the client's own claim.
    assert client_ip(_request("198.51.100.4", "203.0.113.9")) == "198.51.100.4"
    # Only proxies in the chain: the farthest one is what we know.
    assert client_ip(_request("10.0.0.2", "10.9.9.9")) == "10.9.9.9"


def test_what_is_not_an_address_is_not_taken_for_one(settings):
    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = []
    assert client_ip(_request("10.0.0.2", "203.0.113.9, not-an-ip")) == "10.0.0.2"
    assert client_ip(_request("10.0.0.2", "")) == "10.0.0.2"
    assert client_ip(_request("10.0.0.2", "2001:db8::7")) == "2001:db8::7"
    assert client_ip(_request("garbage")) == "unknown"
    assert axes_client_ip(_request("garbage")) is None
