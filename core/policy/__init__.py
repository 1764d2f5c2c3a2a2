"""The content policy applied to every prompt before any provider is called.

Design
------
A prompt is refused by fixed rules that no template or configuration can switch off,
and by the configured additions:

``child-sexual-abuse``
    a term that on its own names child sexual abuse material (``lolicon``,
    ``jailbait``, "child porn", "pédopornographie" ...);
``sexualised-minors``
    a minor-indicating term and a sexual or nudity term anywhere in the same
    prompt. The check runs on the whole expanded prompt, the text sent to the
    provider (template prompt or A/B variant + chosen wildcards + style), so words
    split across a wildcard and a style still meet. Minor-indicating: ages under 18
    written any way ("16-year-old", "16yo", "aged 12", "sixteen year old", "seize
    ans", "dix-sept ans", "13th birthday"), school grades ("5th grader", "CM2",
    "collégienne", "en 4e"), words for children and teenagers, diminutives
    ("fillette", "tyke"), and a young adjective within two words of girl / boy /
    daughter ("little blonde girls", "petite fille"). Sexual or nudity: English and
    French terms and phrases (core.policy.lexicon); a few ambiguous words
    ("explicit", "provocative", "thong") count only within three words of a minor
    term, so "a provocative poster for teens" passes and "écolière provocante" does not;
``real-private-person``
    a request for a recognisable real private person ("my neighbour", "ma
    collègue", "real person named ...") or a name from ``policy.private_people``;
``denied-term``
    a term of ``policy.deny_terms``.

Before matching, the text is normalised (core.policy.normalise: case, accents,
look-alike letters, hyphens and punctuation, leetspeak, s p a c e d and
s.e.p.a.r.a.t.e.d letters, repeated letters, plurals) and the benign compounds of the
allow-list are taken out ("naked cake", "nude lipstick", "minor league", "kid goat",
"baby spinach", "pieds nus", "A minor" in music): the allow-list only removes those
exact compounds, so "nude lipstick on a teen" still meets "teen" only, and is allowed,
while "naked teen" is refused. A negative prompt is not checked: it lists what must
not appear.

The design follows Civitai's open-source prompt audit (``src/utils/metadata/audit.ts``
in https://github.com/civitai/civitai: age expressions, young adjective + noun
compounds, leetspeak, plurals, a nudity-and-minor co-occurrence test) and the
categories the image APIs moderate (OpenAI ``sexual/minors``,
https://platform.openai.com/docs/guides/moderation; Stability AI Acceptable Use
Policy, https://stability.ai/use-policy). A word list is a floor, not a classifier:
every generated image is also checked by the image classifier (tasks.safety).

``evaluate(text)`` returns a ``Verdict``; ``check_prompt(text)`` raises
``ContentPolicyError`` with the rule and the matched words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.errors import ContentPolicyError
from core.policy import lexicon as lx
from core.policy.normalise import fold, plain, token_forms, views

__all__ = ["Verdict", "evaluate", "check_prompt", "views"]

RULE_CSAM = "child-sexual-abuse"
RULE_MINORS = "sexualised-minors"
RULE_PRIVATE = "real-private-person"
RULE_DENIED = "denied-term"

_RULE_TEXT = {RULE_CSAM: "child sexual abuse term", RULE_MINORS: "sexualised minors",
              RULE_PRIVATE: "real private person", RULE_DENIED: "denied term"}


def _alternation(items: Iterable[str], *, escape: bool = True) -> str:
    ordered = sorted(set(items), key=lambda s: (-len(s), s))
    return "|".join(re.escape(i) if escape else i for i in ordered)


def _phrases(items: Iterable[str]) -> re.Pattern[str]:
    return re.compile(rf" (?:{_alternation(items)})(?= )")


#: spaces optional inside an allowed compound, so that the ``joined`` reading ("nudecolored") matches too
_ALLOW = re.compile(rf"(?<= )(?:{_alternation((p.replace(' ', ' ?') for p in lx.ALLOW_PHRASES), escape=False)})(?= )")
_CSAM_PHRASES = _phrases(lx.CSAM_PHRASES)
_MINOR_PHRASES = _phrases(lx.MINOR_PHRASES_EN + lx.MINOR_PHRASES_FR)
_SEXUAL_PHRASES = _phrases(lx.SEXUAL_PHRASES_EN + lx.SEXUAL_PHRASES_FR)
#: a possessive ("my neighbour's garden") is about their things, not a depiction of them
_PRIVATE = re.compile(rf" (?:{_alternation(lx.PRIVATE_PATTERNS, escape=False)})(?= )(?! s )")
_YOUNG = re.compile(
    rf" (?:{_alternation(lx.YOUNG_ADJECTIVES_EN)})(?: [a-z]+){{0,2}}? (?:{_alternation(lx.YOUNG_NOUNS_EN)})(?= )")
_COMPOUND_YOUNG = re.compile(r"^(?:little|young|lil|tiny|small|teen|preteen|school|baby|kid)(?:girl|boy|gurl|grl)s?$")
_TEEN_COMPOUND = re.compile(r"^\w*teen\w*$")
#: "teen" inside these is a number, an ordinal ("sixteenth century") or another word (ages are the _AGE rule's)
_NOT_TEEN = re.compile(r"^(?:(?:thir|four|fif|six|seven|eigh|nine)teen(?:th)?s?|\w*teenths?|"
                       r"canteens?|velveteens?|umpteen|umpteenth|sateens?|poteen|steen|tureen)$")
_SEXUAL_INFIXES = ("nude", "naked", "porn", "sexy", "nsfw", "hentai", "lingerie", "topless", "erotic")

_DIGIT_AGE = r"(?<![0-9])(?:1[0-7]|[1-9])(?![0-9])"
_EN_WORD_AGE = "".join(f"(?<!{t} )" for t in lx.TENS_EN) + rf"(?<![a-z])(?:{_alternation(lx.AGE_WORDS_EN)})"
_FR_WORD_AGE = "".join(f"(?<!{t} )" for t in lx.TENS_FR) + rf"(?<![a-z])(?:{_alternation(lx.AGE_WORDS_FR)})"
_EN_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
                "eleventh", "twelfth")
_AGE = re.compile(
    "|".join([
        # 16 year old, 16yo, 16 yrs, sixteen-year-old, 16yearold, 6 months old
        rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE}) ?(?:years?|yrs?|yo|y o|anos)(?: ?old)?(?![a-z])",
        rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE}) ?(?:months?|weeks?) ?old(?![a-z])",
        rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE}) (?:years? )?of age(?![a-z])",
        # aged 12, age 12, at age twelve
        rf"(?<![a-z])(?:aged?|age of) (?:{_DIGIT_AGE}|{_EN_WORD_AGE})(?![a-z0-9])",
        # 13th birthday, sweet sixteen
        rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE})(?: ?(?:st|nd|rd|th))? birthday",
        r"sweet (?:16|sixteen)(?![a-z0-9])",
        # she is 12, a girl of twelve
        rf"(?<![a-z])(?:girl|boy|she s|he s|she is|he is|who is|child|kid|daughter|son) (?:of |only |just |barely )?"
        rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE})(?![a-z0-9])",
        # French: 16 ans, seize ans, dix-sept ans, age de 12 ans
        rf"(?:{_DIGIT_AGE}|{_FR_WORD_AGE}) ?ans?(?![a-z])",
        # school grades: 5th grade(r), fifth grader, CM2 (lexicon), en 4e (lexicon)
        r"(?<![0-9])(?:1[0-2]|[1-9]) ?(?:st|nd|rd|th) grade(?:rs?)?(?![a-z])",
        rf"(?<![a-z])(?:{_alternation(_EN_ORDINALS)}) grade(?:rs?)?(?![a-z])",
    ])
)

_MINOR_WORDS = lx.MINOR_WORDS_EN | lx.MINOR_WORDS_FR
_SEXUAL_WORDS = lx.SEXUAL_WORDS_EN | lx.SEXUAL_WORDS_FR


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one text: ``allowed``, else the ``rule`` and the ``matched`` words."""

    allowed: bool
    rule: str | None = None
    matched: tuple[str, ...] = field(default_factory=tuple)

    @property
    def reason(self) -> str:
        """``"sexualised minors: 'teen' with 'nude'"``; ``"allowed"`` when allowed."""
        if self.allowed or self.rule is None:
            return "allowed"
        words = [repr(m) for m in self.matched]
        joined = " with ".join(words) if self.rule == RULE_MINORS else ", ".join(words)
        return f"{_RULE_TEXT[self.rule]}: {joined}"


def _scan_tokens(view: str) -> tuple[list[str], list[str], list[str], list[tuple[int, str]], list[tuple[int, str]]]:
    """CSAM, minor and sexual tokens of ``view``, and the positions of minor and weak sexual tokens."""
    csam: list[str] = []
    minor: list[str] = []
    sexual: list[str] = []
    minor_at: list[tuple[int, str]] = []
    weak_at: list[tuple[int, str]] = []
    for index, token in enumerate(view.split()):
        forms = token_forms(token)
        if forms & lx.CSAM_WORDS:
            csam.append(token)
        if forms & _MINOR_WORDS or _COMPOUND_YOUNG.match(token) or (
                _TEEN_COMPOUND.match(token) and not _NOT_TEEN.match(token)):
            minor.append(token)
            minor_at.append((index, token))
        if forms & _SEXUAL_WORDS or any(infix in token and token != infix for infix in _SEXUAL_INFIXES):
            sexual.append(token)
        elif forms & lx.WEAK_SEXUAL_WORDS:
            weak_at.append((index, token))
    return csam, minor, sexual, minor_at, weak_at


def _word_index(view: str, position: int) -> int:
    return view[:position].count(" ") - 1


def _near(minor_at: list[tuple[int, str]], weak_at: list[tuple[int, str]]) -> str | None:
    """The first weak sexual word within ``WEAK_DISTANCE`` words of a minor term."""
    for index, word in weak_at:
        if any(abs(index - other) <= lx.WEAK_DISTANCE for other, _ in minor_at):
            return word
    return None


def _first(pattern: re.Pattern[str], view: str) -> str | None:
    match = pattern.search(view)
    return match.group(0).strip() if match else None


def evaluate(text: str, *, deny_terms: Iterable[str] = (), private_people: Iterable[str] = ()) -> Verdict:
    """The verdict for ``text`` (the whole expanded prompt). Linear in its length."""
    minor: str | None = None
    sexual: str | None = None
    private: str | None = None
    for index, view in enumerate(views(text)):
        view = _ALLOW.sub(" ", view)
        view = re.sub(" +", " ", view)
        csam, minors, sexuals, minor_at, weak_at = _scan_tokens(view)
        phrase = _first(_CSAM_PHRASES, view)
        if csam or phrase:
            return Verdict(False, RULE_CSAM, (csam[0] if csam else phrase or "",))
        for pattern in (_AGE, _MINOR_PHRASES, _YOUNG):
            for match in pattern.finditer(view):
                minor_at.append((_word_index(view, match.start() + 1), match.group(0).strip()))
        minor = minor or (minors[0] if minors else None) or _first(_AGE, view) or _first(_MINOR_PHRASES, view) \
            or _first(_YOUNG, view)
        sexual = sexual or (sexuals[0] if sexuals else None) or _first(_SEXUAL_PHRASES, view) or _near(minor_at, weak_at)
        if index == 0:  # the plain reading only: joined words would turn "neighbour's" into a plural
            private = _first(_PRIVATE, view)
    if minor and sexual:
        return Verdict(False, RULE_MINORS, (minor, sexual))
    if private:
        return Verdict(False, RULE_PRIVATE, (private,))
    base = plain(fold(text))
    for name in private_people:
        wanted = plain(fold(name)).strip()
        if wanted and f" {wanted} " in base:
            return Verdict(False, RULE_PRIVATE, (name.strip(),))
    for term in deny_terms:
        wanted = plain(fold(term)).strip()
        if wanted and f" {wanted} " in base:
            return Verdict(False, RULE_DENIED, (term.strip(),))
    return Verdict(True)


def check_prompt(prompt: str, *, deny_terms: Iterable[str] = (), private_people: Iterable[str] = ()) -> None:
    """Refuse ``prompt`` (the full text sent to the provider) or return None.

    Raises ContentPolicyError("<rule>: <matched words>"), its ``rule`` attribute set.
    """
    verdict = evaluate(prompt, deny_terms=deny_terms, private_people=private_people)
    if not verdict.allowed:
        raise ContentPolicyError(verdict.reason, verdict.rule)
