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
    ans", "dix-sept ans", "13th birthday", "under 16", "just turned 13", "looks 12",
    "the twins, both 11", a caption's "Emma, 13"), school grades ("5th grader",
    "grade 8", "year 9 pupils", "CM2", "collégienne", "en 4e", "en troisième",
    "classe de seconde", "au collège"; "élève" after a determiner or before a school,
    "une élève", "élève de CM2", since "élevé", high, folds to the same letters),
    words for children and teenagers ("garçon" too, as "boy"; not "garçon de café" nor
    "enterrement de vie de garçon"), diminutives
    ("fillette", "tyke", "la petite en ..."), a young adjective within two words of
    girl / boy / daughter / lad / niece ("little blonde girls", "young lad", "petite
    fille"), and one term written inside another ("nakedchild", "kidnude"). Sexual
    or nudity: English and French terms, phrases and patterns (policy.lexicon:
    "bra", "negligee", "jambes écartées", "her shirt off", "photo coquine", "in the
    shower", "wedding night", "escort girl", slang such as "seggs"); a few
    ambiguous words ("explicit", "provocative", "thong", "pucelle", "nuisette")
    count only within three words of a minor term, so "a provocative poster for teens" passes and
    "écolière provocante" does not, and "hot" only right before one ("hot teen",
    not "hot dogs for kids").
    Not ages: a thing's ("a 12 year old whisky", "un chien de 9 ans"), a duration
    ("for 10 years", "ten years later", "il y a dix ans", "dix ans plus tard") and a
    quantity ("under 10 minutes");
``real-private-person``
    a request for a recognisable real private person: someone the writer names by
    their relation ("my neighbour", "my sister-in-law", "a friend of mine", "ma
    collègue", "mon ex", "une amie à moi", up to three words between: "my hot
    blonde neighbour", "ma meilleure amie"), by the writer's surroundings ("the
    cashier at my local supermarket", "la boulangère de mon quartier", "the woman
    who lives next door to me", "the stranger I saw on the bus"), "real person
    named ...", "a coworker named ...", or a name from ``policy.private_people``.
    Only the first person counts ("a woman and her boyfriend" is a character), and
    not where the relation is the owner of a thing ("my neighbour's garden", "le
    jardin de ma voisine"; but "my neighbour's face", "la fille de mes voisins" and
    "a photo of my neighbour" are refused), the recipient or the author ("a card
    for my mum", "une lettre à ma grand-mère", "a drawing by my son");
``child-violence``
    a minor term with graphic violence or abuse (``policy.categories``: "gore",
    "covered in blood", "tortured", "battu à mort" anywhere; "dead", "blood", "hit" within
    two words of the minor term, so "a child mourning her dead dog" passes);
``intimate-real-person``
    a sexual term with a real, identifiable person, private or public: a "Firstname
    Lastname" shape (a known given name and a capitalised word, or two capitalised words in
    a text not written in Title Case; not an artist: "by", "in the style of", "'s
    painting"), a known-person cue ("celebrity", "deepfake", "face swap", "from
    accounting", "her LinkedIn photo", "du quartier"), a relation ("my ex"), a name of
    ``policy.private_people`` or ``policy.rules.known_people``, or a reference photo
    (img2img). Public figures are real people: "Taylor Swift nude" is refused;
``graphic-gore``, ``hate-symbols``, ``self-harm``
    the configurable categories (``policy.rules``, policy.config: on by default, more
    terms, allow-listed phrases such as a Hindu swastika or "suicide prevention");
``denied-term``
    a term of ``policy.deny_terms``.

Spanish, German and Italian terms cover the fixed categories (minors, sexual terms, ages
such as "14 años", "14 Jahre alt", "quattordicenne", violence). The reason of a refusal is
the rule's fixed text ("sexualised minors"); it never quotes the prompt, which may be
private (``Verdict.matched`` keeps the words for tests and diagnosis only).

Before matching, the text is normalised (policy.normalise: case, accents,
look-alike letters and small capitals, hyphens and punctuation, leetspeak, s p a c e d
and s.e.p.a.r.a.t.e.d letters, letters masked by asterisks ("n*de"), repeated
letters, plurals) and the benign compounds of the allow-list are taken out ("naked
cake", "nude lipstick", "minor league", "kid goat", "baby spinach", "pieds nus", "A
minor" in music, "beau gosse", "nu metal", "mineur de fond", "my neighbor Totoro"):
the allow-list only removes those exact compounds, so "nude lipstick on a teen" still
meets "teen" only, and is allowed, while "naked teen" is refused. A negated sexual
term is on the allow-list too ("no nudity", "non-sexual", "no nudity or sexual
content", "pas de nudité"), so "children at the beach, no nudity" passes; only the
negated words go ("a teen, no nsfw, naked" is refused). Long minor words and a few
long sexual ones also match with one letter wrong, missing, extra or swapped
("colegienne", "schoolgril", "lingere"; symmetric deletion as in SymSpell,
https://github.com/wolfgarbe/SymSpell, checked with the Damerau-Levenshtein distance,
https://en.wikipedia.org/wiki/Damerau%E2%80%93Levenshtein_distance); words whose
one-letter neighbours are other words ("panties" / "parties", "seductive" /
"deductive") are left out. The negative prompt is judged by ``policy.gate.judge`` for what it
implies (clothing excluded means nudity), not for its words.

Decisions on ambiguous prompts (a word list cannot read intent): "bikini", "bra",
"lingerie", "underwear" and "sexy" with a minor term are refused wherever they stand
("a little girl in a bikini", "kids' underwear packaging", "kids in a sexy modern
house"), a swimsuit ("maillot de bain") is not; a minor showering is refused, a baby's
bath is not; "breastfeeding" is not sexual; a nude with an adult or no age (museum
statues, "nude sculpture", "Venus") is allowed; "freshman" / "sophomore" and "young"
+ a noun other than those above ("young gymnast") are not minor terms (both are used
of adults); the writer's own family counts as real private people ("my wife", "a
portrait of my late father").

The design follows Civitai's open-source prompt audit (``src/utils/metadata/audit.ts``
in https://github.com/civitai/civitai: age expressions, young adjective + noun
compounds, leetspeak, plurals, a nudity-and-minor co-occurrence test) and the
categories the image APIs moderate (OpenAI ``sexual/minors``,
https://platform.openai.com/docs/guides/moderation; Stability AI Acceptable Use
Policy, https://stability.ai/use-policy). School years: the French ``cycles``
(CP ... terminale, https://en.wikipedia.org/wiki/Education_in_France) and the English
school years (https://www.gov.uk/national-curriculum). Algospeak spellings ("seggs"):
https://en.wikipedia.org/wiki/Algospeak. A word list is a floor, not a classifier:
every generated image is also checked by the image classifier (imaging.safety).

Every step is linear in the length of the text (the word index of a match is found by
bisection, a token is classified once per distinct word), so a 100 kB prompt or a
pathological one ("a" * 100000, "1 " * 50000, runs of combining marks) is checked in
well under a second.

``evaluate(text)`` returns a ``Verdict``; ``check_prompt(text)`` raises
``ContentPolicyError`` naming the rule; ``judge(parts, reference_image, policy)``
(policy.gate) judges a whole request with both layers and returns a ``Decision``.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from domain.errors import ContentPolicyError
from policy import categories as cat
from policy import lexicon as lx
from policy.config import DEFAULT_RULES, CategoryRule, PolicyRules
from policy.normalise import fold, plain, token_forms, unmask, views

__all__ = ["RULES", "PolicyRules", "Verdict", "check_prompt", "evaluate", "views"]

RULE_CSAM = "child-sexual-abuse"
RULE_MINORS = "sexualised-minors"
RULE_PRIVATE = "real-private-person"
RULE_DENIED = "denied-term"
RULE_CHILD_VIOLENCE = "child-violence"
RULE_INTIMATE = "intimate-real-person"
RULE_GORE = "graphic-gore"
RULE_HATE = "hate-symbols"
RULE_SELF_HARM = "self-harm"

_RULE_TEXT = {
    RULE_CSAM: "child sexual abuse material",
    RULE_MINORS: "sexualised minors",
    RULE_PRIVATE: "real private person",
    RULE_DENIED: "denied term",
    RULE_CHILD_VIOLENCE: "violence or abuse involving children",
    RULE_INTIMATE: "intimate or sexual imagery of a real person",
    RULE_GORE: "graphic gore",
    RULE_HATE: "hateful or extremist symbols or propaganda",
    RULE_SELF_HARM: "self-harm",
}
#: every rule, in the order they are checked
RULES = (RULE_CSAM, RULE_MINORS, RULE_CHILD_VIOLENCE, RULE_INTIMATE, RULE_PRIVATE, RULE_GORE, RULE_HATE, RULE_SELF_HARM, RULE_DENIED)


def _alternation(items: Iterable[str], *, escape: bool = True) -> str:
    ordered = sorted(set(items), key=lambda s: (-len(s), s))
    return "|".join(re.escape(i) if escape else i for i in ordered)


def _phrases(items: Iterable[str]) -> re.Pattern[str]:
    return re.compile(rf" (?:{_alternation(items)})(?= )")


#: spaces optional inside an allowed compound, so that the ``joined`` reading ("nudecolored") matches too
_ALLOW = re.compile(rf"(?<= )(?:{_alternation((p.replace(' ', ' ?') for p in lx.ALLOW_PHRASES + cat.VIOLENCE_ALLOW), escape=False)})(?= )")
_CSAM_PHRASES = _phrases(lx.CSAM_PHRASES)
#: a plural "s" is allowed after a minor phrase ("high schoolers", "school kids")
_MINOR_PHRASES = re.compile(rf" (?:{_alternation(lx.MINOR_PHRASES_EN + lx.MINOR_PHRASES_FR + cat.MINOR_PHRASES_INTL)})s?(?= )")
_SEXUAL_PHRASES = _phrases(lx.SEXUAL_PHRASES_EN + lx.SEXUAL_PHRASES_FR + cat.SEXUAL_PHRASES_INTL)
_SEXUAL_PATTERNS = re.compile(rf" (?:{_alternation(lx.SEXUAL_PATTERNS_EN + lx.SEXUAL_PATTERNS_FR, escape=False)})(?= )")
_YOUNG = re.compile(rf" (?:{_alternation(lx.YOUNG_ADJECTIVES_EN)})(?: [a-z]+){{0,2}}? (?:{_alternation(lx.YOUNG_NOUNS_EN)})(?= )")
#: French "la petite" / "un petit" used as a noun: followed by a preposition or an adjective, not by a noun
_PETIT = re.compile(
    r" (?:une|la|cette|ta|sa|ma|notre|votre|leur|un|le|ce|ton|son|mon|les|des|ces|mes|tes|ses|"
    r"nos|vos|leurs) petite?s? (?:en|qui|nue|nues|nus|toute|toutes|tous|sans|aux?|"
    r"avec|dans|sur|allongee?s?|couchee?s?)(?= )"
)
#: French school years as words: "une fille en troisième", "classe de seconde" (not "en troisième position",
#: nor "en seconde" or "en première", a gear and a train class)
_FR_GRADE = re.compile(
    r" (?:en (?:sixieme|cinquieme|quatrieme|troisieme)|classes? de (?:sixieme|cinquieme|quatrieme|troisieme|"
    r"seconde|premiere|terminale))(?= )"
    r"(?! (?:position|place|ligne|rang|partie|division|annee|etage|vitesse|page|periode|round|manche|tour|mi|"
    r"heure|minute|semaine|fois|classe|main|lecture|jeunesse|noces|intention|instance|mondiale|guerre|saison|"
    r"generation|personne|file|rangee|epoque|moitie|couche|dame|vue) )"
)
_ELEVE = re.compile(
    rf" (?:(?:{_alternation(lx.ELEVE_BEFORE)}) eleves?|eleves? (?:de|d|du|des|en) "
    rf"(?:{_alternation(lx.ELEVE_SCHOOLS)}))(?= )"
)
_COMPOUND_YOUNG = re.compile(r"^(?:little|young|lil|tiny|small|teen|preteen|school|baby|kid)(?:girl|boy|gurl|grl)s?$")
_TEEN_COMPOUND = re.compile(r"^\w*teen\w*$")
#: "teen" inside these is a number, an ordinal ("sixteenth century") or another word (ages are the _AGE rule's)
_NOT_TEEN = re.compile(
    r"^(?:(?:thir|four|fif|six|seven|eigh|nine)teen\w*|\w*teenths?\w*|"
    r"canteens?|velveteens?|umpteen|umpteenth|sateens?|poteen|steen|tureen)$"
)
#: a token that begins or ends with one of these is sexual ("nudeteen", "seminude", "sexylady"; not "snaked")
_SEXUAL_INFIXES = ("nude", "naked", "porn", "sexy", "nsfw", "hentai", "lingerie", "topless", "erotic")

_DIGIT_AGE = r"(?<![0-9])(?:1[0-7]|[1-9])(?![0-9])"
_EN_WORD_AGE = "".join(f"(?<!{t} )" for t in lx.TENS_EN) + rf"(?<![a-z])(?:{_alternation(lx.AGE_WORDS_EN)})"
_EN_WORD_AGE_2 = "".join(f"(?<!{t} )" for t in lx.TENS_EN) + rf"(?<![a-z])(?:{_alternation(w for w in lx.AGE_WORDS_EN if w != 'one')})"
_FR_WORD_AGE = "".join(f"(?<!{t} )" for t in lx.TENS_FR) + rf"(?<![a-z])(?:{_alternation(lx.AGE_WORDS_FR)})"
_EN_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth")
_GRADE_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_INTL_WORD_AGE = rf"(?<![a-z])(?:{_alternation(cat.AGE_WORDS_INTL)})"
_IT_TEEN_AGE = "tredic|quattordic|quindic|sedic|diciassett|dodic|undic"
_AGE = re.compile(
    "|".join(
        [
            # 16 years of age (before the bare "16 years" below, which would take its place)
            rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE}) (?:years? )?of age(?![a-z])",
            # 16 year old, 16yo, 16 yrs, sixteen-year-old, 16yearold, 6 months old
            rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE}) ?(?:years?|yrs?|yo|y o|anos)(?: ?old)?(?![a-z])",
            rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE}) ?(?:months?|weeks?) ?old(?![a-z])",
            # aged 12, age 12, at age twelve, between the ages of 10 and 14
            rf"(?<![a-z])(?:aged?|ages? of|aged? between|between the ages of) (?:{_DIGIT_AGE}|{_EN_WORD_AGE})(?![a-z0-9])",
            # under 16, not yet fifteen, just turned 13 (the quantities are filtered out: "under 10 minutes")
            rf"(?<![a-z])(?:under|below|younger than|not yet|not even|barely|just turned|turned|turning|almost|nearly|"
            rf"about to turn|soon to be|going on|looks|looking|appears|appearing) "
            rf"(?:age |the age of )?(?:{_DIGIT_AGE}|{_EN_WORD_AGE_2})(?![a-z0-9])",
            # 13th birthday, sweet sixteen
            rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE})(?: ?(?:st|nd|rd|th))? birthday",
            r"sweet (?:16|sixteen)(?![a-z0-9])",
            # she is 12, a girl of twelve, the twins, both 11 (the quantities are filtered out: "a girl 5 feet tall")
            rf"(?<![a-z])(?:girls?|boys?|she s|he s|she is|he is|who is|who s|whos|child|kid|kids|children|daughters?|sons?|twins|both|"
            rf"siblings|sisters|brothers) (?:of |only |just |barely |aged |all )?"
            rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE})(?![a-z0-9])",
            # French: 16 ans, seize ans, dix-sept ans, age de 12 ans
            rf"(?:{_DIGIT_AGE}|{_FR_WORD_AGE}) ?ans?(?![a-z])",
            # school grades: 5th grade(r), fifth grader, grade 8, year 9 pupils, CM2 (lexicon), en 4e (lexicon)
            r"(?<![0-9])(?:1[0-2]|[1-9]) ?(?:st|nd|rd|th) grade(?:rs?)?(?![a-z])",
            rf"(?<![a-z])(?:{_alternation(_EN_ORDINALS)}) grade(?:rs?)?(?![a-z])",
            rf"(?<![a-z])grade (?:1[0-2]|[1-9]|{_GRADE_WORDS})(?![a-z0-9])",
            rf"(?<![a-z])year (?:1[0-3]|[1-9]|{_GRADE_WORDS}|thirteen) (?:pupils?|students?|girls?|boys?|kids?|"
            rf"class(?:es)?|child(?:ren)?)(?![a-z])",
            # in year 7 (English school years), is in 8th grade (above)
            rf"(?<![a-z])(?:in|into|from|of) year (?:1[0-3]|[1-9]|{_GRADE_WORDS})(?![a-z0-9])",
            # looks 18 but is 14; elle a l'air d'avoir 18 ans mais elle en a 14
            rf"(?<![a-z])(?:but|actually|really|truly) (?:she s |he s |she is |he is |is |s |only |just )*"
            rf"(?:{_DIGIT_AGE}|{_EN_WORD_AGE})(?![a-z0-9])",
            rf"(?<![a-z])(?:en a|n a que|n en a que) (?:{_DIGIT_AGE}|{_FR_WORD_AGE})(?![a-z0-9])",
            # Spanish, German, Italian: 14 anos, 14 jahre alt, 14 jahrige, vierzehnjahrige, 14 anni, 14enne
            rf"(?:{_DIGIT_AGE}|{_INTL_WORD_AGE}) ?(?:{_alternation(cat.YEARS_INTL)})(?![a-z])",
            rf"(?:{_INTL_WORD_AGE})jahrig[a-z]*",
            rf"(?<![a-z])(?:{_IT_TEEN_AGE})enn[ei](?![a-z])",
        ]
    )
)
#: a name followed by an age, as a caption gives it: "Emma, 13, ...", "Lily (9)" (on the text before case folding)
_NAME_AGE = re.compile(r"(?<![\w])([A-Z][a-z\u00e0-\u00ff]+)(?:, ?| ?\()(1[0-7]|[2-9])(?:\)|,|\s*$)")
_BARE_DURATION = re.compile(r"(?:years?|yrs?|ans?|anos?|jahren?|anni|anno)$")
_QUANTITY_QUALIFIER = re.compile(
    r"^(?:but|actually|really|truly|en|n|under|below|younger|not|barely|just|turned|turning|almost|nearly|about|soon|"
    r"going|looks|looking|appears|appearing|girls?|boys?|she|he|who|"
    r"child|kids?|children|daughters?|sons?|twins|both|siblings|sisters|brothers) "
)
_DURATION_BEFORE = (
    " for",
    " after",
    " over",
    " in",
    " within",
    " every",
    " last",
    " past",
    " next",
    " first",
    " more than",
    " since",
    " spent",
    " took",
    " il y a",
    " depuis",
    " pendant",
    " durant",
    " apres",
    " dans",
    " en",
    " voila",
    " ca fait",
    " tous les",
    " au bout de",
    " a peine de",
    " hace",
    " durante",
    " desde",
    " vor",
    " seit",
    " nach",
    " uber",
    " da",
    " per",
    " dopo",
)
_DURATION_AFTER = (
    "ago",
    "later",
    "earlier",
    "after",
    "before",
    "apart",
    "from",
    "since",
    "in",
    "on",
    "anniversary",
    "plan",
    "warranty",
    "contract",
    "guarantee",
    "lease",
    "younger",
    "older",
    "long",
    "running",
    "straight",
    "together",
    "of marriage",
    "of experience",
    "of war",
    "of prison",
    "of service",
    "of history",
    "plus tard",
    "plus tot",
    "apres",
    "auparavant",
    "de mariage",
    "d experience",
    "de prison",
    "d age",
    "de garantie",
    "de carriere",
    "d existence",
    "de travail",
    "de vie",
    "de retard",
    "de suite",
    "de service",
    "d histoire",
    "de guerre",
    "plus jeune",
    "plus vieux",
    "plus vieille",
    "plus age",
    "plus agee",
    "de plus",
    "de moins",
    "fa",
    "despues",
    "mas tarde",
    "atras",
    "spater",
    "danach",
    "dopo",
    "prima",
    "lang",
    "de matrimonio",
)

#: with a minor term anywhere: violence against children (graphic gore included)
_VIOLENT_WORDS = cat.VIOLENT_WORDS | cat.GORE_WORDS
_MINOR_WORDS = lx.MINOR_WORDS_EN | lx.MINOR_WORDS_FR | cat.MINOR_WORDS_INTL
_SEXUAL_WORDS = lx.SEXUAL_WORDS_EN | lx.SEXUAL_WORDS_FR | cat.SEXUAL_WORDS_INTL

_FUNCTION_WORDS = (
    "for",
    "to",
    "and",
    "or",
    "of",
    "with",
    "the",
    "a",
    "an",
    "in",
    "on",
    "at",
    "from",
    "by",
    "as",
    "is",
    "are",
    "was",
    "like",
    "than",
    "who",
    "that",
    "this",
    "pour",
    "de",
    "du",
    "des",
    "et",
    "ou",
    "avec",
    "le",
    "la",
    "les",
    "l",
    "d",
    "un",
    "une",
    "en",
    "sur",
    "dans",
    "par",
    "qui",
    "que",
    "au",
    "aux",
    "ce",
    "cette",
)
_NOT_FUNCTION = rf"(?:(?!(?:{_alternation(_FUNCTION_WORDS)}) )[a-z0-9]+ )"
_RELATION = re.compile(
    rf" (?:(?:my|our) {_NOT_FUNCTION}{{0,3}}?(?:{_alternation(lx.RELATIONS_EN)})"
    rf"|(?:mon|ma|mes|notre|nos) {_NOT_FUNCTION}{{0,3}}?(?:{_alternation(lx.RELATIONS_FR)}))(?= )"
)
_OF_MINE = re.compile(
    rf" (?:(?:{_alternation(lx.RELATIONS_EN)}) of (?:mine|ours)"
    rf"|(?:{_alternation(lx.RELATIONS_FR)}) a (?:moi|nous))(?= )"
)
_PLACED = re.compile(
    rf" (?:(?:{_alternation(lx.PEOPLE_EN)})(?: [a-z]+){{0,3}}? (?:from|on|in|at|of|near) (?:my|our) "
    rf"(?:local |own |old |new |former )?(?:{_alternation(lx.PLACES_EN)})"
    rf"|(?:{_alternation(lx.PEOPLE_FR)})(?: [a-z]+){{0,3}}? (?:de|du|dans|a|au|pres de) (?:mon|ma|mes|notre|nos) "
    rf"(?:ancienne? |nouvelle? |nouvel )?(?:{_alternation(lx.PLACES_FR)}))(?= )"
)
_PRIVATE = re.compile(rf" (?:{_alternation(lx.PRIVATE_PATTERNS + lx.NEXT_DOOR_PATTERNS, escape=False)})(?= )")
#: "my clients' logo": the apostrophe after a plural marks a possessive, kept as " s" for the private rule
_PLURAL_POSSESSIVE = re.compile(r"(?<=[a-z]s)['’](?![a-z])")
_OF = frozenset(("of", "de"))
_POSSESSED_PERSONS = lx.POSSESSED_PERSONS | frozenset(lx.RELATIONS_EN + lx.PEOPLE_EN)
#: what an asterisk-masked word ("n*de", "t**n") is matched against
_MASK_TARGETS = frozenset(w for w in _MINOR_WORDS | _SEXUAL_WORDS | lx.CSAM_WORDS if len(w) >= 3)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


#: each fuzzy word and each of its one-letter deletions -> the words it comes from (symmetric deletion)
_FUZZY_INDEX: dict[str, set[str]] = {}
for _word in lx.FUZZY_WORDS:
    for _key in _deletions(_word) | {_word}:
        _FUZZY_INDEX.setdefault(_key, set()).add(_word)


def _one_edit(a: str, b: str) -> bool:
    """``a`` and ``b`` differ by one letter substituted, inserted, deleted, or two adjacent letters swapped."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    if len(a) == len(b):
        return a[start + 1 :] == b[start + 1 :] or (a[start + 2 :] == b[start + 2 :] and a[start : start + 2] == b[start : start + 2][::-1])
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[start + 1 :] == shorter[start:]


def _fuzzy(token: str) -> str | None:
    """The lexicon word ``token`` misspells by one letter ("colegienne" -> "collegienne"), if any."""
    if len(token) < 7 or len(token) > 20:
        return None
    for key in _deletions(token) | {token}:
        for word in _FUZZY_INDEX.get(key, ()):
            if _one_edit(token, word):
                return word
    return None


def _minor_word(token: str, forms: set[str]) -> bool:
    return bool(forms & _MINOR_WORDS) or bool(_COMPOUND_YOUNG.match(token)) or (bool(_TEEN_COMPOUND.match(token)) and not _NOT_TEEN.match(token))


def _sexual_word(token: str, forms: set[str]) -> bool:
    return bool(forms & _SEXUAL_WORDS) or token in lx.EXACT_SEXUAL_WORDS


#: (csam, minor, sexual, weak sexual) for one token; tokens repeat, so a long prompt costs its distinct words
@lru_cache(maxsize=16384)
def _classify(token: str) -> tuple[bool, bool, bool, bool]:
    forms = token_forms(token)
    fixed = _fuzzy(token)
    if fixed:
        forms.add(fixed)
    minor = _minor_word(token, forms)
    sexual = _sexual_word(token, forms) or (
        token not in lx.NOT_SEXUAL_TOKENS and any(token != infix and (token.startswith(infix) or token.endswith(infix)) for infix in _SEXUAL_INFIXES)
    )
    if not (minor and sexual) and 5 <= len(token) <= 40:
        # a minor term and a sexual term written as one word: "nakedchild", "kidnude", "lyceennenue"
        for cut in range(2, len(token) - 1):
            head, tail = token[:cut], token[cut:]
            head_forms, tail_forms = token_forms(head), token_forms(tail)
            if (_minor_word(head, head_forms) and _sexual_word(tail, tail_forms)) or (_sexual_word(head, head_forms) and _minor_word(tail, tail_forms)):
                minor = sexual = True
                break
    weak = not sexual and bool(forms & lx.WEAK_SEXUAL_WORDS)
    return bool(forms & lx.CSAM_WORDS), minor, sexual, weak


def _words_before(view: str, position: int, count: int) -> list[str]:
    return view[max(0, position - 16 * count) : position].split()[-count:]


def _words_after(view: str, position: int, count: int) -> list[str]:
    return view[position : position + 16 * count].split()[:count]


def _is_age(view: str, match: re.Match[str]) -> bool:
    """False for an age that is a thing's ("a 12 year old whisky", "un whisky de 12 ans"), a duration
    ("for 10 years", "il y a dix ans", "10 years later") or a quantity ("under 10 minutes")."""
    text = match.group(0).strip()
    after = _words_after(view, match.end(), 2)
    before = _words_before(view, match.start(), 2)
    if after and after[0] in lx.AGED_THINGS:
        return False
    if len(before) == 2 and before[-1] in ("de", "d") and before[0] in lx.AGED_THINGS:
        return False
    if before and before[-1] in lx.AGED_THINGS and text.startswith("age"):
        return False
    if _QUANTITY_QUALIFIER.match(text):
        if after and after[0] in ("years", "year", "yrs"):  # "looking 10 years younger", "almost 10 years later"
            following = " ".join(_words_after(view, match.end(), 3)[1:]) + " "
            return not following.startswith(tuple(f"{a} " for a in _DURATION_AFTER))
        return not (after and after[0] in lx.UNITS)
    if _BARE_DURATION.search(text):
        preceding = " " + " ".join(_words_before(view, match.start(), 4))
        following = " ".join(after) + " "
        if preceding.endswith(_DURATION_BEFORE) or following.startswith(tuple(f"{a} " for a in _DURATION_AFTER)):
            return False
    return True


def _is_private(view: str, match: re.Match[str]) -> bool:
    """False when "my X" owns a thing ("my neighbour's garden"), is the recipient or author ("a card for my mum", "un dessin par mon fils") or the
    owner of a thing ("le jardin de ma voisine")."""
    after = _words_after(view, match.end(), 2)
    if after[:1] == ["s"] and not (len(after) == 2 and after[1] in _POSSESSED_PERSONS):
        return False  # "my neighbour's garden", but not "my neighbour's face" or "my son's teacher"
    before = _words_before(view, match.start(), 4)
    if not before:
        return True
    if before[-1] in lx.NOT_SUBJECT_BEFORE:
        return False
    if before[-1] in _OF:  # a likeness of them, or them with a sexual term, else a thing of theirs
        return any(word in lx.DEPICTIONS or _classify(word)[2] for word in before[:-1] + _words_after(view, match.end(), 3))
    return True


def _private(view: str) -> str | None:
    for match in _RELATION.finditer(view):
        if _is_private(view, match):
            return match.group(0).strip()
    for match in _PLACED.finditer(view):  # "the kids at my school", not "a poster for the kids at my school"
        if not set(_words_before(view, match.start(), 2)) & lx.NOT_SUBJECT_BEFORE:
            return match.group(0).strip()
    return _first(_OF_MINE, view) or _first(_PRIVATE, view)


def _first(pattern: re.Pattern[str], view: str) -> str | None:
    match = pattern.search(view)
    return match.group(0).strip() if match else None


@dataclass
class _Reading:
    """What one normalised reading holds: a CSAM term, the minor terms with their word index, a sexual
    term, a violent term (anywhere, or within ``VIOLENCE_DISTANCE`` words of a minor term)."""

    tokens: list[str]
    csam: str | None = None
    minor_at: list[tuple[int, str]] = field(default_factory=list)
    sexual: list[str] = field(default_factory=list)
    weak_at: list[tuple[int, str]] = field(default_factory=list)
    hot_at: list[int] = field(default_factory=list)
    violent: list[str] = field(default_factory=list)
    violent_near_at: list[tuple[int, str]] = field(default_factory=list)


def _read_tokens(tokens: list[str]) -> _Reading:
    reading = _Reading(tokens)
    for index, token in enumerate(tokens):
        csam, minor, strong, weak = _classify(token)
        if csam:
            reading.csam = token
            return reading
        if minor:
            reading.minor_at.append((index, token))
        if strong:
            reading.sexual.append(token)
        elif weak:
            reading.weak_at.append((index, token))
        if token in lx.HOT_WORDS:
            reading.hot_at.append(index)
        _read_violence(reading, index, token)
    return reading


def _read_violence(reading: _Reading, index: int, token: str) -> None:
    forms = token_forms(token)
    if forms & _VIOLENT_WORDS:
        reading.violent.append(token)
    elif forms & cat.VIOLENT_NEAR_WORDS:
        reading.violent_near_at.append((index, token))


def _minor_matches(view: str) -> list[tuple[int, str]]:
    spaces = [i for i, ch in enumerate(view) if ch == " "]
    found = []
    for pattern in (_AGE, _MINOR_PHRASES, _YOUNG, _PETIT, _FR_GRADE, _ELEVE):
        for match in pattern.finditer(view):
            if pattern is not _AGE or _is_age(view, match):
                found.append((bisect_left(spaces, match.start() + 1) - 1, match.group(0).strip()))
    return found


def _near(indexed: list[tuple[int, str]], anchors: set[int], distance: int) -> str | None:
    return next((word for index, word in indexed if any(abs(index - other) <= distance for other in anchors)), None)


def _weak_sexual(reading: _Reading) -> str | None:
    """A weak sexual word near a minor term, or "hot" right before one ("hot teen", "hot blonde teen")."""
    minor_index = {index for index, _ in reading.minor_at}
    found = _near(reading.weak_at, minor_index, lx.WEAK_DISTANCE)
    tokens = reading.tokens
    return found or next(
        (tokens[index] for index in reading.hot_at if index + 1 in minor_index or (index + 2 in minor_index and tokens[index + 1] in lx.HOT_FILLERS)), None
    )


def _scan(view: str) -> tuple[str | None, str | None, str | None, str | None]:
    """The CSAM term, the first minor term, the first sexual term and a violent term of one reading."""
    reading = _read_tokens(view.split())
    csam = reading.csam or _first(_CSAM_PHRASES, view)
    if csam:
        return csam, None, None, None
    reading.minor_at += _minor_matches(view)
    reading.minor_at.sort()
    found = reading.sexual[0] if reading.sexual else _first(_SEXUAL_PHRASES, view) or _first(_SEXUAL_PATTERNS, view)
    if not found and reading.minor_at:
        found = _weak_sexual(reading)
    violent = reading.violent[0] if reading.violent else _first(_VIOLENT_PHRASES, view)
    if not violent and reading.minor_at:
        violent = _near(reading.violent_near_at, {i for i, _ in reading.minor_at}, cat.VIOLENCE_DISTANCE)
    return None, reading.minor_at[0][1] if reading.minor_at else None, found, violent


@dataclass
class _Facts:
    """What the whole text holds, over all its readings."""

    text: str
    readings: list[str]
    csam: str | None = None
    minor: str | None = None
    sexual: str | None = None
    violent: str | None = None


def _readings(text: str) -> list[str]:
    """The normalised readings of ``text`` with the benign compounds taken out."""
    readings = views(text)
    if "*" in text:  # letters masked by asterisks: "n*de t**n"
        readings += views(unmask(fold(text), _MASK_TARGETS))
    return [re.sub(" +", " ", _ALLOW.sub(" ", view)) for view in readings]


def _facts(text: str, rules: PolicyRules) -> _Facts:
    facts = _Facts(text, _readings(text))
    for view in facts.readings:
        csam, minor, sexual, violent = _scan(view)
        if csam:
            facts.csam = csam
            return facts
        facts.minor = facts.minor or minor or _term_in(view, tuple(rules.minor_terms))
        facts.sexual = facts.sexual or sexual or _term_in(view, tuple(rules.sexual_terms))
        facts.violent = facts.violent or violent
    if facts.sexual and not facts.minor:
        named = _NAME_AGE.search(unicodedata.normalize("NFKC", text))
        facts.minor = f"{named.group(1)}, {named.group(2)}" if named else None
    return facts


@lru_cache(maxsize=256)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    wanted = [plain(fold(term)).strip() for term in terms]
    wanted = [w for w in wanted if w]
    return re.compile(rf" (?:{_alternation(wanted)})(?= )") if wanted else None


def _term_in(view: str, terms: tuple[str, ...]) -> str | None:
    pattern = _terms_pattern(terms)
    return _first(pattern, view) if pattern else None


# ---------------------------------------------------------------------------------------
# Real people: a name, a known-person cue, a configured name, a reference photo.
_VIOLENT_PHRASES = _phrases(cat.VIOLENT_PHRASES + cat.GORE_PHRASES)
_PERSON_CUES = _phrases(cat.KNOWN_PERSON_CUES)
_NAME_WORD = r"[A-Z\u00c0-\u00de][a-z\u00df-\u00ff]+(?:-[A-Z\u00c0-\u00de][a-z\u00df-\u00ff]+)?"
#: "Maria Gonzalez", "Jean-Pierre Dupont", "Sophie de la Tour", "Mary J. Blige" (on the NFKC text, case kept)
_CAPITALISED_NAME = re.compile(
    rf"(?<![\w])({_NAME_WORD})(?: [A-Z]\.)? (?:(?i:de|du|des|de la|van|von|der|del|della|di|da|le|la|al|bin|mc) )?"
    rf"((?:Mc|Mac|O')?{_NAME_WORD})(?![\w])"
)
_LOWER_NAME = re.compile(r" ([a-z]+) ([a-z]{3,})(?= )")
_AUTHOR_BEFORE = re.compile(rf"(?:^| )(?:{_alternation(cat.AUTHOR_BEFORE)}) $")
_AUTHOR_AFTER = re.compile(rf"^ (?:{_alternation(cat.AUTHOR_AFTER)})(?: |$)")
#: lower-case given names that are also common words ("rose petals"): only a capitalised one counts
_AMBIGUOUS_NAMES = frozenset(
    (
        "rose",
        "jade",
        "paris",
        "april",
        "may",
        "june",
        "grace",
        "summer",
        "amber",
        "ruby",
        "hope",
        "faith",
        "joy",
        "mark",
        "bill",
        "will",
        "art",
        "jack",
        "frank",
        "dolores",
        "heather",
        "olive",
        "iris",
        "lily",
        "violet",
        "ivy",
        "pearl",
        "hazel",
        "daisy",
        "dawn",
        "autumn",
        "marine",
        "chris",
        "sandra",
        "bella",
        "rosa",
        "gigi",
        "kim",
        "christian",
        "lea",
        "ana",
        "lena",
        "sara",
        "bernard",
        "carol",
        "don",
        "nicki",
        "justin",
        "joe",
        "mia",
        "eric",
        "alba",
        "andrea",
        "julia",
        "laura",
    )
)


def _is_author(text: str, start: int, end: int) -> bool:
    """A name after "by" / "in the style of" or before "style" / "'s painting" is an artist or a brand."""
    before = plain(fold(text[max(0, start - 40) : start])).rstrip() + " "
    after = plain(fold(text[end : end + 40]))
    return bool(_AUTHOR_BEFORE.search(before) or _AUTHOR_AFTER.match(after))


def _name_words_ok(first: str, last: str) -> bool:
    first, last = fold(first), fold(last)
    if first in cat.NOT_FIRST_NAMES or last in cat.NOT_SURNAMES or last in cat.NOT_FIRST_NAMES:
        return False
    return not any(_classify(word)[1] or _classify(word)[2] for word in (first, last))


def _title_case(text: str) -> bool:
    """Most words capitalised (a title, where capitals do not mark names)."""
    words = re.findall(r"[A-Za-z\u00c0-\u00ff]+", text)
    return sum(w[:1].isupper() for w in words) * 2 > len(words)


def _capitalised_name(text: str) -> bool:
    """A "Firstname Lastname" shape: a known given name followed by a capitalised word, or two capitalised
    words in a text that is not written in Title Case (where capitals mark names)."""
    for match in _CAPITALISED_NAME.finditer(text):
        first, last = match.group(1), match.group(2)
        if not _name_words_ok(first, last) or _is_author(text, match.start(), match.end()):
            continue
        if fold(first).split("-")[0] in cat.FIRST_NAMES or not _title_case(text[: match.start()] + text[match.end() :]):
            return True
    return False


def _lower_name(view: str) -> bool:
    """A known given name in lower case followed by a word that is not a function or policy word
    ("taylor swift nude")."""
    for match in _LOWER_NAME.finditer(view):
        first, last = match.group(1), match.group(2)
        if (
            first in cat.FIRST_NAMES
            and first not in _AMBIGUOUS_NAMES
            and _name_words_ok(first, last)
            and last not in _FUNCTION_WORDS
            and not _is_author(view, match.start(), match.end())
        ):
            return True
    return False


def _real_person_cue(facts: _Facts, names: tuple[str, ...], reference_image: bool) -> str | None:
    """Why the text names a real, identifiable person (a fixed label, never the prompt's words), or None."""
    base = facts.readings[0] if facts.readings else " "
    if reference_image:
        return "reference photo"
    if _term_in(base, names):
        return "configured name"
    if _capitalised_name(unicodedata.normalize("NFKC", facts.text)) or _lower_name(base):
        return "full name"
    if any(_PERSON_CUES.search(view) for view in facts.readings[:2]):
        return "real-person cue"
    if _private_in(facts.text):
        return "relation"
    return None


def _private_in(text: str) -> str | None:
    # the plain reading only: joined words would turn "neighbour's" into a plural
    return _private(re.sub(" +", " ", _ALLOW.sub(" ", plain(_PLURAL_POSSESSIVE.sub(" s", fold(text))))))


# ---------------------------------------------------------------------------------------
# The configurable categories.
@dataclass(frozen=True)
class _Category:
    rule: str
    words: frozenset[str]
    phrases: tuple[str, ...]
    allow: tuple[str, ...]
    setting: str


_CATEGORIES = (
    _Category(RULE_SELF_HARM, cat.SELF_HARM_WORDS, cat.SELF_HARM_PHRASES, cat.SELF_HARM_ALLOW, "self_harm"),
    _Category(RULE_GORE, cat.GORE_WORDS, cat.GORE_PHRASES, cat.GORE_ALLOW, "graphic_gore"),
    _Category(RULE_HATE, cat.HATE_WORDS, cat.HATE_PHRASES, cat.HATE_ALLOW, "hate_symbols"),
)


@lru_cache(maxsize=64)
def _category_patterns(category: _Category, terms: tuple[str, ...], allow: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    added = [plain(fold(t)).strip() for t in terms]
    allowed = [re.escape(plain(fold(a)).strip()) for a in allow]
    phrases = re.compile(rf" (?:{_alternation([*category.phrases, *(a for a in added if a)])})(?= )")
    allow_re = re.compile(rf"(?<= )(?:{_alternation([*category.allow, *(a for a in allowed if a)], escape=False)})(?= )")
    return phrases, allow_re


def _category_term(category: _Category, setting: CategoryRule, readings: list[str]) -> str | None:
    phrases, allow = _category_patterns(category, tuple(setting.terms), tuple(setting.allow))
    for view in readings:
        view = re.sub(" +", " ", allow.sub(" ", view))
        token = next((t for t in view.split() if token_forms(t) & category.words), None)
        found = token or _first(phrases, view)
        if found:
            return found
    return None


# ---------------------------------------------------------------------------------------
# The verdict.
@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one text: ``allowed``, else the ``rule``. ``matched``: the words that
    matched, for tests and for the operator's own diagnosis only; never logged, stored or shown, as the
    prompt may be private (``reason`` names the rule and quotes nothing)."""

    allowed: bool
    rule: str | None = None
    matched: tuple[str, ...] = field(default_factory=tuple, repr=False, compare=False)

    @property
    def reason(self) -> str:
        """The category in fixed words (``"sexualised minors"``), never the prompt's; ``"allowed"`` when allowed."""
        if self.allowed or self.rule is None:
            return "allowed"
        return _RULE_TEXT[self.rule]


def _fixed_verdict(facts: _Facts) -> Verdict | None:
    if facts.csam:
        return Verdict(False, RULE_CSAM, (facts.csam,))
    if facts.minor and facts.sexual:
        return Verdict(False, RULE_MINORS, (facts.minor, facts.sexual))
    if facts.minor and facts.violent:
        return Verdict(False, RULE_CHILD_VIOLENCE, (facts.minor, facts.violent))
    return None


def _person_verdict(facts: _Facts, rules: PolicyRules, private_people: tuple[str, ...], reference_image: bool) -> Verdict | None:
    if facts.sexual:
        cue = _real_person_cue(facts, (*private_people, *rules.known_people), reference_image)
        if cue:
            return Verdict(False, RULE_INTIMATE, (cue, facts.sexual))
    private = _private_in(facts.text)
    if private:
        return Verdict(False, RULE_PRIVATE, (private,))
    name = _term_in(facts.readings[0] if facts.readings else " ", private_people)
    return Verdict(False, RULE_PRIVATE, (name,)) if name else None


def _category_verdict(facts: _Facts, rules: PolicyRules, deny_terms: tuple[str, ...]) -> Verdict | None:
    for category in _CATEGORIES:
        setting: CategoryRule = getattr(rules, category.setting)
        found = _category_term(category, setting, facts.readings) if setting.enabled else None
        if found:
            return Verdict(False, category.rule, (found,))
    base = plain(fold(facts.text))
    denied = _term_in(base, deny_terms)
    return Verdict(False, RULE_DENIED, (denied,)) if denied else None


def evaluate(
    text: str, *, deny_terms: Iterable[str] = (), private_people: Iterable[str] = (), rules: PolicyRules | None = None, reference_image: bool = False
) -> Verdict:
    """The verdict for ``text`` (the whole expanded prompt). Linear in its length.

    ``rules``: the studio's settings (``policy.rules``, policy.config); ``reference_image``: the
    request edits a given photo (img2img), so a sexual term means intimate imagery of a real person."""
    rules = rules or DEFAULT_RULES
    facts = _facts(text, rules)
    return (
        _fixed_verdict(facts)
        or _person_verdict(facts, rules, tuple(private_people), reference_image)
        or _category_verdict(facts, rules, tuple(deny_terms))
        or Verdict(True)
    )


def check_prompt(prompt: str, *, deny_terms: Iterable[str] = (), private_people: Iterable[str] = (), rules: PolicyRules | None = None) -> None:
    """Refuse ``prompt`` (the full text sent to the provider) or return None.

    Raises ContentPolicyError(<the rule in words>), its ``rule`` attribute set; the message quotes nothing
    of the prompt.
    """
    verdict = evaluate(prompt, deny_terms=deny_terms, private_people=private_people, rules=rules)
    if not verdict.allowed:
        raise ContentPolicyError(verdict.reason, verdict.rule)
