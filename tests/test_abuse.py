"""The public Space as an attacker sees it: events called through the raw queue API, two sessions (attacker and
victim), the server's own credentials as a canary. Everything on 127.0.0.1 and bounded in time."""
from __future__ import annotations

import pytest

from tests import queue_api

CANARY = "hf_CANARYserverOwnerToken000000000"


@pytest.fixture
def canary_hub(fake_hub, monkeypatch, tmp_path):
    """The fake Hub, with the server 'logged in' as its owner: HF_TOKEN and a saved token file both hold the canary."""
    monkeypatch.setenv("HF_TOKEN", CANARY)
    token_file = tmp_path / "hf-home" / "token"
    token_file.parent.mkdir()
    token_file.write_text(CANARY)
    monkeypatch.setenv("HF_HOME", str(token_file.parent))
    monkeypatch.setenv("HF_TOKEN_PATH", str(token_file))
    return fake_hub


def _finetuned_session(client) -> str:
    """A session that has run a tiny fine-tune (what the attacker does first), returned by its hash."""
    client.predict(model="resnet_digits", target="digits", stage1_epochs=1, stage2_epochs=0, max_steps=1,
                   compare_scratch=False, api_name="/finetune")
    return client.session_hash


def _no_canary(hub) -> None:
    assert all(CANARY not in (a or "") for a in hub.auth), "the server's own token reached the Hub"


@pytest.mark.timeout(240)
def test_publish_never_uses_the_servers_token(app_url, app_demo, canary_hub):
    from gradio_client import Client

    attacker = Client(app_url, verbose=False)
    session = _finetuned_session(attacker)
    idx = queue_api.fn_index(app_demo, "publish")
    # The private Publish event, called directly with an empty token field.
    out = queue_api.call(app_url, idx, [None, "owner/target-repo", ""], session, timeout=60)
    assert out["success"] is False
    assert "your own Hub account" in (out["output"].get("error") or "")
    _no_canary(canary_hub)
    assert "owner/target-repo" not in canary_hub.repos
    # A token smuggled in the request body as a gr.OAuthToken is not a sign-in off a Space.
    out = queue_api.call(app_url, idx, [None, "owner/target-repo", ""], session, oauth_token="hf_whatever")
    assert out["success"] is False
    _no_canary(canary_hub)
    # The visitor's own typed token is used, and only it.
    before = len(canary_hub.auth)
    out = queue_api.call(app_url, idx, [None, "visitor/my-digits", "hf_visitorOwnToken"], session, timeout=60)
    assert out["success"] is True, out
    assert "visitor/my-digits" in canary_hub.repos
    sent = [a for a in canary_hub.auth[before:] if a]
    assert sent and set(sent) == {"Bearer hf_visitorOwnToken"}
    _no_canary(canary_hub)


def test_visitor_token_rules(monkeypatch):
    import gradio as gr

    from ui.finetune import visitor_token

    monkeypatch.setenv("HF_TOKEN", CANARY)
    monkeypatch.delenv("SPACE_ID", raising=False)
    with pytest.raises(ValueError, match="your own Hub account"):
        visitor_token("", None)
    with pytest.raises(ValueError, match="your own Hub account"):   # off a Space, an OAuthToken is not a login
        visitor_token("  ", gr.OAuthToken(token="hf_x", scope="", expires_at=0))
    with pytest.raises(ValueError, match="does not look like"):
        visitor_token("hf_a b", None)
    assert visitor_token(" hf_typed ", None) == "hf_typed"
    monkeypatch.setenv("SPACE_ID", "someone/playground")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "client")
    assert visitor_token("", gr.OAuthToken(token="hf_oauth_signed_in", scope="write-repos", expires_at=0)) == \
        "hf_oauth_signed_in"
    assert visitor_token("hf_typed", gr.OAuthToken(token="hf_oauth_x", scope="", expires_at=0)) == "hf_typed"


def test_hub_publish_needs_an_explicit_token(canary_hub, tmp_path):
    from zoo.hub import publish

    f = tmp_path / "config.json"
    f.write_text("{}")
    for token in (None, "", "   "):
        with pytest.raises(ValueError, match="never taken from the server"):
            publish({"config.json": str(f)}, "owner/x", token=token)
    assert canary_hub.auth == [] and "owner/x" not in canary_hub.repos
