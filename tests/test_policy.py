"""The content policy (policy): a broad English and French set in both directions,
the normalisation, the co-occurrence over the whole expanded prompt, the allow-list,
``content-pipeline policy check``, and a wildcard expansion blocked for that variation
only, before any provider call."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from domain.errors import ContentPolicyError
from policy.engine import check_prompt, evaluate, views
from tests.data.policy_prompts import ALLOWED_EN, ALLOWED_FR, REFUSED_EN, REFUSED_FR
from tests.servers import A1111Server
from tests.rows import flow_summary

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_the_set_is_broad() -> None:
    assert len(REFUSED_EN) + len(REFUSED_FR) + len(ALLOWED_EN) + len(ALLOWED_FR) >= 60
    assert min(len(REFUSED_EN), len(REFUSED_FR), len(ALLOWED_EN), len(ALLOWED_FR)) >= 20


@pytest.mark.parametrize("prompt", REFUSED_EN + REFUSED_FR)
def test_refused(prompt: str) -> None:
    verdict = evaluate(prompt)
    assert not verdict.allowed, prompt
    # issue #20: a real private person with a sexual term is now refused by intimate-real-person
    assert verdict.rule in ("sexualised-minors", "child-sexual-abuse", "real-private-person", "intimate-real-person")


@pytest.mark.parametrize("prompt", ALLOWED_EN + ALLOWED_FR)
def test_allowed(prompt: str) -> None:
    verdict = evaluate(prompt)
    assert verdict.allowed, f"{prompt!r} refused: {verdict.reason}"


def test_normalisation_undoes_spelling_tricks() -> None:
    joined = " ".join(views("T33N  n u d e  Ｂｉｋｉｎｉ nu.de s*e*x*y éco-lière 16-year-old"))
    for word in ("teen", "nude", "bikini", "sexy", "ecoliere", "16 year old", "16yearold"):
        assert word in joined, word


@pytest.mark.parametrize(
    "age",
    [
        "16-year-old",
        "16 year old",
        "16yo",
        "16 y/o",
        "sixteen-year-old",
        "aged 16",
        "age 12",
        "13th birthday",
        "seize ans",
        "dix-sept ans",
        "12 ans",
        "5th grader",
        "fifth grade",
        "she is 12",
        "15 yrs old",
    ],
)
def test_ages_written_any_way_meet_a_sexual_term(age: str) -> None:
    assert evaluate(f"photo of a girl, {age}, nude").rule == "sexualised-minors"
    assert evaluate(f"photo of a girl, {age}, reading a book").allowed


@pytest.mark.parametrize("adult", ["18-year-old", "22 year old", "twenty-two year old", "vingt-deux ans", "42 ans", "aged 30", "thirty five years old"])
def test_adult_ages_are_not_minors(adult: str) -> None:
    assert evaluate(f"artistic nude portrait of a woman, {adult}").allowed


def test_co_occurrence_spans_the_whole_prompt_and_the_allow_list_is_exact() -> None:
    # the minor term in the template, the nudity term in a style appended after it
    assert evaluate("portrait of a teenager on a beach, golden hour, nude").rule == "sexualised-minors"
    assert evaluate("nude lipstick swatches, teen makeup tutorial").allowed  # "nude lipstick" only
    assert evaluate("nude lipstick on a naked teen").rule == "sexualised-minors"  # but "naked" still counts
    assert evaluate("kid goat and a naked cake").allowed
    assert evaluate("naked kid").rule == "sexualised-minors"


def test_other_rules_and_configured_terms() -> None:
    assert evaluate("photo of my neighbour in the garden").rule == "real-private-person"
    assert evaluate("photo de ma collègue au bureau").rule == "real-private-person"
    assert evaluate("my neighbour's garden in spring").allowed  # their things, not them
    assert evaluate("portrait of Jane Q. Doe", private_people=["Jane Q. Doe"]).rule == "real-private-person"
    assert evaluate("a crimson logo", deny_terms=["Crimson"]).rule == "denied-term"
    with pytest.raises(ContentPolicyError, match="^sexualised minors$") as caught:  # issue #20: quotes nothing
        check_prompt("teen, nude")
    assert caught.value.rule == "sexualised-minors"


def test_a_100_kb_prompt_is_checked_quickly() -> None:
    prompt = "a quiet lake at dawn, " * 5000 + "teen nude"
    started = time.monotonic()
    assert evaluate(prompt).rule == "sexualised-minors"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "text",
    [
        "a" * 100_000,
        "1 " * 50_000,
        " " * 100_000,
        "\t\n " * 30_000,
        "e" + "\u0301" * 100_000,
        "t\u0301e\u0308en " * 15_000,
        "\u200b" * 100_000,
        "n*de " * 20_000,
        "a*" * 50_000,
        "16 yo " * 16_000,
        "12 ans " * 14_000,
        "my little friend " * 6_000,
        "photo of my " * 9_000,
        "une petite en " * 7_000,
        "t e e n " * 12_000,
        "s.e.x." * 16_000,
        "1234567890" * 10_000,
        "young " * 16_000 + "girl",
        "the girl " * 10_000 + "at my school",
        "(" * 50_000 + ")" * 50_000,
        "\U0001f600" * 50_000,
        "hot " * 25_000,
        "abcdefghijklmnopqrstu " * 4_500,
        "10 years later " * 6_000,
    ],
)
def test_pathological_input_returns(text: str) -> None:
    """Long and hostile input is checked without catastrophic backtracking (every step is linear)."""
    verdict = evaluate(text)
    assert verdict.allowed or verdict.rule in ("sexualised-minors", "real-private-person")


def test_red_team_rules() -> None:
    # ages: a thing's, a duration and a quantity are not a minor's
    assert evaluate("a 12 year old whisky, sexy bar").allowed
    assert evaluate("un whisky de 12 ans, ambiance sexy").allowed
    assert evaluate("dix ans plus tard, un couple sensuel").allowed
    assert evaluate("under 10 minutes recipe, sexy plating").allowed
    assert evaluate("a girl under 16, nude").rule == "sexualised-minors"
    assert evaluate("Emma, 13, sunbathing topless").matched == ("Emma, 13", "topless")
    # a term inside another, masked, small capitals, one letter wrong
    for prompt in ("n a k e d  c h i l d", "n*de t**n", "ᴛᴇᴇɴ ɴᴜᴅᴇ", "une colégienne nue", "schoolgril nude"):
        assert evaluate(prompt).rule == "sexualised-minors", prompt
    assert evaluate("kids birthday parties, nude cake").allowed  # "parties" is not "panties"
    # negation takes out the negated words only
    assert evaluate("children at the beach, fully clothed, no nudity").allowed
    assert evaluate("a teen, no nsfw, naked").rule == "sexualised-minors"
    # "hot" right before a minor term only
    assert evaluate("hot teen selfie").rule == "sexualised-minors"
    assert evaluate("kids eating hot dogs at a barbecue").allowed


@pytest.mark.parametrize(
    ("prompt", "private"),
    [
        ("le jardin de ma voisine", False),
        ("la fille de mes voisins", True),
        ("une photo de ma voisine", True),
        ("my neighbour's garden in spring", False),
        ("my neighbour's face", True),
        ("my son's teacher in a swimsuit", True),
        ("a birthday card for my mom", False),
        ("une lettre à ma grand-mère", False),
        ("a drawing by my son", False),
        ("a woman and her boyfriend walking on the beach", False),
        ("my ex-girlfriend Lisa in a bikini", True),
        ("ma belle-sœur en bikini", True),
        ("a friend of mine in a bikini", True),
        ("une amie à moi en maillot", True),
        ("the cashier at my local supermarket", True),
        ("la boulangère de mon quartier", True),
        ("the woman who lives next door to me", True),
        ("My Neighbor Totoro poster", False),
        ("my colleagues' office party decorations", False),
        ("mon chef-d'œuvre au fusain", False),
    ],
)
def test_real_private_person(prompt: str, private: bool) -> None:
    verdict = evaluate(prompt)
    # issue #20: with a sexual term the rule is intimate-real-person
    assert (verdict.rule in ("real-private-person", "intimate-real-person")) is private, verdict.reason


@pytest.mark.parametrize(
    ("prompt", "allowed"),
    [
        ("a little girl in a bikini building a sandcastle", False),
        ("kids' underwear packaging design", True),
        ("une fillette en maillot de bain à la piscine", True),
        ("a teen in the shower", False),
        ("un bébé dans son bain", True),
        ("breastfeeding awareness poster", True),
        ("a mother breastfeeding her baby", True),
        ("nude sculpture in a museum, marble", True),
        ("a portrait of my late father", False),
    ],
)
def test_documented_decisions(prompt: str, allowed: bool) -> None:
    """The ambiguous cases the module docstring decides."""
    assert evaluate(prompt).allowed is allowed


def test_policy_check_command(make_config) -> None:  # type: ignore[no-untyped-def]
    make_config(policy={"deny_terms": ["crimson"]})
    runner = CliRunner()
    refused = runner.invoke(app, ["policy", "check", "une collégienne nue [bold]x[/bold]"])
    assert refused.exit_code == 1
    assert refused.output.strip() == "refused: rule sexualised-minors: sexualised minors"  # issue #20: no prompt words
    allowed = runner.invoke(app, ["policy", "check", "a naked cake with [red] berries"])
    assert allowed.exit_code == 0 and allowed.output.strip() == "allowed: 'a naked cake with [red] berries'"
    denied = runner.invoke(app, ["policy", "check", "a crimson mug"])
    assert denied.exit_code == 1 and "rule denied-term" in denied.output
    long = runner.invoke(app, ["policy", "check", "x" * 100_000])
    assert long.exit_code == 0 and len(long.output) < 200  # the echo is shortened


def test_policy_check_as_a_subprocess(tmp_path: Path) -> None:
    """The command as a user runs it, one process per prompt: verdict line and exit code."""
    for prompt, code in [("sixteen year old boy, naked", 1), ("minor league baseball at dusk", 0)]:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "policy", "check", prompt],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert result.returncode == code, result.stderr
        assert result.stdout.startswith("refused: rule sexualised-minors" if code else "allowed:")
        assert "Traceback" not in result.stderr


def _library_with(tmp_path: Path, template: str) -> Path:
    import shutil

    folder = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", folder)
    (folder / "food" / "risky.yaml").write_text(template)
    return folder


def test_templates_validate_checks_every_expansion(tmp_path: Path, make_config) -> None:  # type: ignore[no-untyped-def]
    folder = _library_with(tmp_path, 'name: risky\nprompt: "portrait of {a fisherman|a teenager} at the harbour"\nstyles: ["charcoal drawing", "nude study"]\n')
    make_config(templates_dir=str(folder))
    result = CliRunner().invoke(app, ["templates", "validate"])
    assert result.exit_code == 2
    assert "risky.yaml: prompt expands to 'portrait of a teenager at the harbour, nude study'" in result.output
    assert "sexualised minors" in result.output


def test_templates_validate_never_quotes_a_private_prompt(tmp_path: Path, make_config) -> None:  # type: ignore[no-untyped-def]
    folder = _library_with(
        tmp_path,
        'name: risky\nprompt: "portrait of {a fisherman|a teenager} at the harbour"\nstyles: ["charcoal drawing", "nude study"]\nembed_prompt: false\n',
    )
    make_config(templates_dir=str(folder))
    result = CliRunner().invoke(app, ["templates", "validate"])
    assert result.exit_code == 2
    assert "risky.yaml: prompt expands to a private prompt, refused by the content policy (sexualised minors)" in result.output.replace("\n", " ")
    assert "harbour" not in result.output and "teenager" not in result.output


def test_a_refused_wildcard_variation_is_blocked_alone_without_a_provider_call(prefect_server, make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate
    from wiring.runtime import get_runtime
    from tests.conftest import a1111_config

    folder = _library_with(tmp_path, 'name: risky\nprompt: "{a fisherman|a schoolgirl|an old sailor} posing nude, charcoal drawing"\nstyles: ["soft light"]\n')
    with A1111Server() as server:
        make_config(templates_dir=str(folder), dedup={"enabled": False}, **a1111_config(server.url))
        summary = flow_summary(generate(template="risky", count=8, batch="wild", return_state=True))
        prompts_sent = [r["json"]["prompt"] for r in server.requests if r["path"] == "/sdapi/v1/txt2img"]
    rows = get_runtime().db.images()
    blocked = [r for r in rows if r.status == "blocked"]
    done = [r for r in rows if r.status == "done"]
    assert blocked and done and len(blocked) + len(done) == 8, [(r.prompt, r.status) for r in rows]
    for row in blocked:
        assert "schoolgirl" in (row.prompt or "")
        assert row.error == "content policy: sexualised minors"
    assert all("schoolgirl" not in (r.prompt or "") for r in done)
    assert len(prompts_sent) == len(done) and not any("schoolgirl" in p for p in prompts_sent)
    assert sorted(i.status for i in summary.images) == sorted(r.status for r in rows)


def test_a_template_with_too_many_expansions_is_checked_as_a_whole(tmp_path: Path) -> None:
    from domain.templates import TemplateLibrary
    from policy.templates import policy_problems

    choices = "|".join(f"colour {i}" for i in range(40))
    folder = _library_with(tmp_path, f'name: risky\nprompt: "{{{choices}}} {{{choices}}} mug for {{adults|a teen}}"\nstyles: ["studio", "nude study"]\n')
    library, problems = TemplateLibrary.validate(folder)
    assert problems == []
    started = time.monotonic()
    found = policy_problems(library)
    assert time.monotonic() - started < 5
    assert len(found) == 1 and "risky.yaml: prompt may expand to" in found[0] and "sexualised minors" in found[0]
