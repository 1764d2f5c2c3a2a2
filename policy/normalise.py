"""Text normalisation for the content policy: every spelling trick becomes plain words.

``views(text)`` returns the few normalised readings of a prompt that the rules are
matched against (a term found in any reading counts):

1. ``base``: Unicode compatibility form (NFKD: full-width letters, ligatures),
   accents and other combining marks dropped, look-alike Cyrillic and Greek
   letters mapped to Latin, zero-width characters removed, case folded; every
   character that is not a letter or a digit becomes a space (hyphens, apostrophes,
   brackets and prompt weights such as ``(nude:1.3)``), spaces squeezed;
2. ``leet``: as ``base``, with leetspeak undone inside words that mix letters and
   digits or symbols (``t33n`` -> ``teen``, ``s3xy`` -> ``sexy``, ``l0l1`` -> ``loli``,
   ``@`` -> ``a``, ``$`` -> ``s``); numbers on their own (ages) are left alone;
3. ``joined``: separators inside a word removed (``nu.de``, ``s*e*x*y``,
   ``t_e_e_n``, ``16-year-old`` -> ``16yearold``);
4. each of those with runs of single characters joined (``n u d e`` -> ``nude``).

Look-alike letters include the small capitals of "fancy text" generators (``ᴛᴇᴇɴ``).
``unmask`` gives one more reading for words masked with asterisks (``n*de`` ->
``nude``, ``t**n`` -> ``teen``), matched letter for letter against the lexicons.

Repeated letters (``nuuude``, ``teeeen``) and plurals are handled at lookup time
(``token_forms``). Every step is linear in the length of the text.
"""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPECIAL = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ŀ": "l", "ſ": "s"})
#: Cyrillic and Greek letters that look like Latin ones (after case folding)
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "һ": "h",
        "ԛ": "q",
        "ԝ": "w",
        "ӏ": "l",
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ς": "s",
        "σ": "o",
        "μ": "u",
        "γ": "y",
        "ω": "w",
        # small capitals of the "fancy text" generators (no compatibility decomposition)
        "ᴀ": "a",
        "ʙ": "b",
        "ᴄ": "c",
        "ᴅ": "d",
        "ᴇ": "e",
        "ꜰ": "f",
        "ɢ": "g",
        "ʜ": "h",
        "ɪ": "i",
        "ᴊ": "j",
        "ᴋ": "k",
        "ʟ": "l",
        "ᴍ": "m",
        "ɴ": "n",
        "ᴏ": "o",
        "ᴘ": "p",
        "ǫ": "q",
        "ʀ": "r",
        "ꜱ": "s",
        "ᴛ": "t",
        "ᴜ": "u",
        "ᴠ": "v",
        "ᴡ": "w",
        "ʏ": "y",
        "ᴢ": "z",
    }
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s", "!": "i", "|": "l", "€": "e"})
_LEET_L = str.maketrans({"1": "l", "|": "i", "!": "l"})
_YO = re.compile(r"\by\s*[/.]\s*o\b\.?")
_WORDISH = re.compile(r"[a-z0-9@$!|€]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_INNER_SEPARATORS = re.compile(r"(?<=[a-z0-9])[.*_\-'’`~^•·+/\\]+(?=[a-z0-9])")
_SINGLE_RUN = re.compile(r"(?<![a-z0-9])(?:[a-z0-9] ){2,}[a-z0-9](?![a-z0-9])")
_REPEAT3 = re.compile(r"([a-z])\1{2,}")
#: a word with letters masked by asterisks: "n*de", "t**n", "s*xy"
_MASKED = re.compile(r"(?<![a-z0-9])[a-z]+(?:\*+[a-z]+)+(?![a-z0-9])")
_REPEAT2 = re.compile(r"([a-z])\1+")


def fold(text: str) -> str:
    """Case folded, accents and zero-width characters removed, look-alikes mapped to Latin."""
    text = _ZERO_WIDTH.sub("", text)
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.translate(_SPECIAL).translate(_HOMOGLYPHS)


def plain(text: str) -> str:
    """Letters and digits only, single spaces, with a space at each end (for phrase matching)."""
    return " " + _NOT_ALNUM.sub(" ", text).strip() + " "


def _deleet(text: str, table: dict[int, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.isalpha() or not any(c.isalpha() for c in word):
            return word
        return word.translate(table).translate(_LEET)

    return _WORDISH.sub(repl, text)


def _join_singles(text: str) -> str:
    return _SINGLE_RUN.sub(lambda m: m.group(0).replace(" ", ""), text)


def views(text: str) -> list[str]:
    """The normalised readings of ``text`` (each with a leading and trailing space)."""
    folded = _YO.sub("yo", fold(text))
    joined = _INNER_SEPARATORS.sub("", folded)
    readings = [folded, _deleet(folded, {}), _deleet(folded, _LEET_L), joined, _deleet(joined, {})]
    out: list[str] = []
    for reading in readings:
        for view in (plain(reading), plain(_join_singles(plain(reading)))):
            if view not in out:
                out.append(view)
    return out


def unmask(text: str, words: frozenset[str]) -> str:
    """``text`` (folded) with each word masked by asterisks ("n*de", "t**n") replaced by the one of ``words``
    it can stand for (each ``*`` one letter), if any; other words are left alone."""
    by_length: dict[int, list[str]] = {}
    for word in sorted(words):
        by_length.setdefault(len(word), []).append(word)
    seen: dict[str, str] = {}

    def repl(match: re.Match[str]) -> str:
        masked = match.group(0)
        if len(masked) > 40:
            return masked
        if masked not in seen:
            pattern = re.compile(re.escape(masked).replace(r"\*", "[a-z]"))
            seen[masked] = next((w for w in by_length.get(len(masked), ()) if pattern.fullmatch(w)), masked)
        return seen[masked]

    return _MASKED.sub(repl, text)


def token_forms(token: str) -> set[str]:
    """``token`` and what it may stand for: singular (``-s``, ``-x``, ``-es``) and, when a
    letter repeats three times or more, the word with repeats squeezed (``nuuude``)."""
    found = {token}
    if _REPEAT3.search(token):
        found.add(_REPEAT3.sub(r"\1\1", token))
        found.add(_REPEAT2.sub(r"\1", token))
    for word in list(found):
        if len(word) > 3 and word[-1] in "sx":
            found.add(word[:-1])
            if word.endswith("es"):
                found.add(word[:-2])
    return found
