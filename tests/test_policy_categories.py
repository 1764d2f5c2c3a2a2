"""Issue #20: the categories a publisher refuses (each a rule, English and French, then
Spanish, German and Italian), their benign look-alikes, the studio's settings
(``policy.rules``), reasons that quote nothing of the prompt, ``judge`` over every text of a
request, and layer 2, OpenAI's moderation endpoint, against a loopback server that
validates the real protocol (tests/moderation_server.py)."""

from __future__ import annotations

import json

import pytest

from policy.engine import RULES, PolicyRules, evaluate
from policy.gate import Decision, RequestParts, judge
from policy.gate import negative_implies, split_name
from policy.moderation import OpenAIModeration
from config.imaging import PolicyConfig
from tests.data.policy_categories import BENIGN, HARMFUL, INTL_BENIGN, INTL_HARMFUL, MISSED
from tests.moderation_server import KEY, ModerationServer
from tests.providers.servers.common import photo

_HARMFUL = [(rule, lang, p) for rule, langs in HARMFUL.items() for lang, ps in langs.items() for p in ps]
_BENIGN = [(rule, lang, p) for rule, langs in BENIGN.items() for lang, ps in langs.items() for p in ps]


def test_every_category_has_30_english_and_30_french_prompts_each_way() -> None:
    for table in (HARMFUL, BENIGN):
        for rule, langs in table.items():
            assert rule in RULES
            assert len(set(langs["en"])) >= 30 and len(set(langs["fr"])) >= 30, rule
    assert len(INTL_HARMFUL) >= 30 and len(INTL_BENIGN) >= 20


@pytest.mark.parametrize(("prompt", "rule"), MISSED)
def test_the_prompts_found_missed_are_refused_by_their_rule(prompt: str, rule: str) -> None:
    assert evaluate(prompt).rule == rule


@pytest.mark.parametrize(("rule", "lang", "prompt"), _HARMFUL)
def test_harmful_prompts_are_refused_by_their_rule(rule: str, lang: str, prompt: str) -> None:
    verdict = evaluate(prompt)
    assert verdict.rule == rule, (lang, verdict.rule, verdict.matched)


@pytest.mark.parametrize(("rule", "lang", "prompt"), _BENIGN)
def test_benign_look_alikes_are_allowed(rule: str, lang: str, prompt: str) -> None:
    verdict = evaluate(prompt)
    assert verdict.allowed, (lang, verdict.rule, verdict.matched)


@pytest.mark.parametrize(("prompt", "rule"), INTL_HARMFUL)
def test_spanish_german_italian_are_refused(prompt: str, rule: str) -> None:
    assert evaluate(prompt).rule == rule


@pytest.mark.parametrize("prompt", INTL_BENIGN)
def test_spanish_german_italian_benign_pass(prompt: str) -> None:
    assert evaluate(prompt).allowed, evaluate(prompt).matched


#: one prompt per rule: every refusal by that rule gives the reason this one gives
_CANONICAL = {rule: next(p for r, _, p in _HARMFUL if r == rule) for rule in HARMFUL}


@pytest.mark.parametrize(("prompt", "rule"), MISSED + [(p, r) for r, _, p in _HARMFUL[::5]])
def test_the_reason_names_the_rule_and_quotes_no_word_of_the_prompt(prompt: str, rule: str) -> None:
    """The reason is a fixed text per rule (so it carries nothing of a private prompt)."""
    verdict = evaluate(prompt)
    assert verdict.reason == evaluate(_CANONICAL[rule]).reason
    assert len({evaluate(p).reason for p in _CANONICAL.values()}) == len(_CANONICAL)  # one text per rule
    for private in ("Maria", "Gonzalez", "accounting", "LinkedIn", "Sophie", "Bernard", "Taylor", "toddler"):
        assert private.lower() not in verdict.reason.lower()


def test_public_figures_are_real_people_now() -> None:
    """Changed by issue #20: sexual imagery of any real identifiable person is refused, public or private;
    a public figure in a non-sexual picture, an artist's name and a classical nude are not."""
    assert evaluate("Taylor Swift nude, photorealistic").rule == "intimate-real-person"
    assert evaluate("taylor swift nude").rule == "intimate-real-person"
    assert evaluate("Taylor Swift performing at a stadium").allowed
    assert evaluate("reclining nude after Titian, oil on canvas").allowed
    assert evaluate("nude study in the style of Egon Schiele").allowed
    assert evaluate("a nude of Zyxwa Qrtuv", rules=PolicyRules()).rule == "intimate-real-person"  # unknown name, shape only


def test_configurable_categories_switch_off_take_terms_and_allow_phrases() -> None:
    assert evaluate("severed head on a spike").rule == "graphic-gore"
    off = PolicyRules.model_validate({"graphic_gore": {"enabled": False}})
    assert evaluate("severed head on a spike", rules=off).allowed
    assert evaluate("severed head of a child", rules=off).rule == "child-violence"  # fixed: cannot be switched off
    added = PolicyRules.model_validate({"hate_symbols": {"terms": ["Crimson Fist"]}})
    assert evaluate("a crimson fist banner", rules=added).rule == "hate-symbols"
    assert evaluate("a crimson fist banner").allowed
    allowed = PolicyRules.model_validate({"hate_symbols": {"allow": ["nazi zombies"]}})
    assert evaluate("nazi zombies video game cover", rules=allowed).allowed
    assert evaluate("nazi zombies video game cover").rule == "hate-symbols"
    stricter = PolicyRules(minor_terms=["cub"], sexual_terms=["spicy"], known_people=["Zed"])
    assert evaluate("a cub in a spicy pose", rules=stricter).rule == "sexualised-minors"
    assert evaluate("zed nude", rules=stricter).rule == "intimate-real-person"
    assert evaluate("a cub in a spicy pose").allowed


def test_policy_config_carries_the_rules() -> None:
    config = PolicyConfig.model_validate({"rules": {"self_harm": {"enabled": False}, "moderation": {"enabled": True, "fail_closed": False}}})
    assert config.rules.self_harm.enabled is False and config.rules.moderation.fail_closed is False
    assert PolicyConfig().rules == PolicyRules()
    with pytest.raises(ValueError):
        PolicyConfig.model_validate({"rules": {"gore": {}}})  # unknown key


# ---------------------------------------------------------------------------------------
# judge: every text of a request
def test_judge_reads_the_negative_prompt_adapters_model_and_reference_image() -> None:
    policy = PolicyConfig()
    child = RequestParts("portrait of a girl, 9 years old, on a bed", negative_prompt="clothes, clothing, dress, underwear")
    assert judge(child, None, policy) == Decision(False, "sexualised-minors", "lexicon", "sexualised minors")
    assert judge(RequestParts("portrait of a girl, 9 years old", negative_prompt="nsfw, nude, blurry"), None, policy).allowed
    assert judge(RequestParts("a woman, nude", negative_prompt="adult, mature"), None, policy).rule == "sexualised-minors"
    lora = RequestParts("a 10 year old at the beach", adapters=("nsfw_nude_body_v2",))
    assert judge(lora, None, policy).rule == "sexualised-minors"
    assert judge(RequestParts("a 10 year old at the beach", model="childrensBookIllustrationV2"), None, policy).allowed
    assert judge(RequestParts("a boy in class", model="ponyNsfwXL"), None, policy).rule == "sexualised-minors"
    edit = RequestParts("the same woman with her clothes removed")
    assert judge(edit, photo(64, 64), policy).rule == "intimate-real-person"
    assert judge(edit, None, policy).allowed  # no photo: an invented woman (an adult nude is not refused)
    assert judge(RequestParts("the same woman in a red coat"), photo(64, 64), policy).allowed
    assert split_name("nsfw_nude_body_v2.safetensors") == "nsfw nude body v 2"
    assert negative_implies("lowres, watermark") == ""


# ---------------------------------------------------------------------------------------
# Layer 2: OpenAI's moderation endpoint
def _policy(server: ModerationServer, **moderation: object) -> PolicyConfig:
    return PolicyConfig.model_validate({"rules": {"moderation": {"enabled": True, "base_url": server.url + "/v1", "timeout_s": 1.0, **moderation}}})


ENV = {"OPENAI_API_KEY": KEY}


def test_moderation_flagged_is_refused_naming_the_layer() -> None:
    with ModerationServer() as server:
        server.flag_words = {"punch him": "violence"}
        decision = judge(RequestParts("two men, one about to punch him"), None, _policy(server), env=ENV)
        assert decision == Decision(False, "moderation-flagged", "moderation", "flagged by the moderation layer: violence", moderation_categories=("violence",))
        sent = server.requests[-1]
        assert sent.method == "POST" and sent.path == "/v1/moderations"
        assert sent.json() == {"model": "omni-moderation-latest", "input": "two men, one about to punch him"}
        assert judge(RequestParts("a quiet lake"), None, _policy(server), env=ENV) == Decision(True, notes=("moderation: not flagged",))


def test_moderation_gets_the_reference_image_and_the_categories_setting() -> None:
    with ModerationServer() as server:
        server.flag_image = "sexual"
        parts = RequestParts("the same person on a beach", style="film grain", adapters=("grainy_v1",))
        decision = judge(parts, photo(64, 48), _policy(server), env=ENV)
        assert decision.layer == "moderation" and decision.moderation_categories == ("sexual",)
        body = server.requests[-1].json()
        assert body["input"][0] == {"type": "text", "text": "the same person on a beach\nfilm grain\ngrainy v 1"}
        assert body["input"][1]["image_url"]["url"].startswith("data:image/png;base64,")
        only_violence = _policy(server, categories=["violence"])
        assert judge(parts, photo(64, 48), only_violence, env=ENV).allowed


def test_the_lexicon_refuses_before_the_endpoint_is_called() -> None:
    with ModerationServer() as server:
        decision = judge(RequestParts("nude teen"), None, _policy(server), env=ENV)
        assert decision.layer == "lexicon" and server.requests == []


@pytest.mark.parametrize("failure", ["500", "429", "timeout", "garbage", "401"])
def test_endpoint_down_fail_closed_refuses_fail_open_allows_and_records(failure: str) -> None:
    with ModerationServer(hang_s=2.0) as server:
        env = {"OPENAI_API_KEY": "sk-wrong"} if failure == "401" else ENV
        server.script.extend([] if failure == "401" else [failure, failure])
        closed = judge(RequestParts("a quiet lake"), None, _policy(server), env=env)
        assert not closed.allowed and (closed.rule, closed.layer) == ("moderation-unavailable", "moderation")
        assert "lake" not in closed.reason
        opened = judge(RequestParts("a quiet lake"), None, _policy(server, fail_closed=False), env=env)
        assert opened.allowed and opened.notes[0].startswith("moderation-unavailable: allowed (fail-open)")


def test_endpoint_unreachable_and_no_key() -> None:
    with ModerationServer() as server:
        url = server.url
    policy = PolicyConfig.model_validate({"rules": {"moderation": {"enabled": True, "base_url": url + "/v1"}}})
    assert judge(RequestParts("a quiet lake"), None, policy, env=ENV).rule == "moderation-unavailable"
    assert judge(RequestParts("a quiet lake"), None, policy, env={}).rule == "moderation-unavailable"


def test_the_loopback_server_refuses_what_the_service_refuses() -> None:
    with ModerationServer() as server:
        client = OpenAIModeration(KEY, base_url=server.url + "/v1", model="text-moderation-latest")
        import httpx

        bad = httpx.post(server.url + "/v1/moderations", json={"input": "x", "modle": "omni-moderation-latest"}, headers={"Authorization": f"Bearer {KEY}"})
        assert bad.status_code == 400 and "Unrecognized request argument" in bad.json()["error"]["message"]
        text_model_with_image = httpx.post(server.url + "/v1/moderations", json=client.payload("x", photo(8, 8)), headers={"Authorization": f"Bearer {KEY}"})
        assert text_model_with_image.status_code == 400
        ok = httpx.post(
            server.url + "/v1/moderations",
            content=json.dumps({"input": ["a", "b"]}),
            headers={"Authorization": f"Bearer {KEY}", "content-type": "application/json"},
        )
        result = ok.json()["results"][0]
        assert ok.status_code == 200 and result["flagged"] is False and len(result["category_scores"]) == 13
