"""The word lists of the content policy, English and French, in normalised form.

Every entry is written as ``core.policy.normalise`` leaves text: lower case, no
accents, hyphens and apostrophes as spaces. Single words are looked up token by
token (a plural ``s`` / ``x`` / ``es`` is also tried without it); entries with a
space are phrases matched on word boundaries.

Sources the lists were built from (read, not copied):

* Civitai's open-source prompt audit (``src/utils/metadata/audit.ts`` and
  ``src/utils/metadata/lists/words-young.json`` in https://github.com/civitai/civitai):
  ages written as digits or words with "year old" / "yo" / "aged", young adjectives
  combined with nouns ("little" + "girl"), leetspeak classes, plurals;
* the moderation categories of the image APIs: OpenAI's ``sexual/minors``
  (https://platform.openai.com/docs/guides/moderation), Stability AI's Acceptable
  Use Policy (https://stability.ai/use-policy: no sexual content involving minors),
  Google's Gemini API safety settings ("sexually explicit",
  https://ai.google.dev/gemini-api/docs/safety-settings).
"""

from __future__ import annotations


def forms(*words: str) -> frozenset[str]:
    """The given words as a set (plural forms are listed where they are irregular)."""
    return frozenset(words)


# ---------------------------------------------------------------------------------------
# Terms that on their own name child sexual abuse material: always refused.
CSAM_WORDS = forms(
    "pedo", "pedos", "pedophile", "pedophiles", "pedophilia", "paedophile", "paedophilia", "pedophilic",
    "pedophilie", "pedophiles", "pedopornographie", "pedopornographique", "pedoporn", "childporn", "csam",
    "lolicon", "shotacon", "jailbait", "pthc", "hurtcore", "kiddieporn",
)
CSAM_PHRASES = (
    "child porn", "child pornography", "child sexual abuse", "kiddie porn", "kiddy porn", "pedo porn",
    "pornographie infantile", "pedo pornographie", "abus sexuel sur mineur", "abus sexuels sur mineurs",
    "pornographie enfantine", "exploitation sexuelle des enfants", "sexual abuse of children",
)

# ---------------------------------------------------------------------------------------
# Minor-indicating terms. English.
MINOR_WORDS_EN = forms(
    "child", "children", "childs", "kid", "kiddo", "kiddie", "kiddy", "toddler", "infant", "baby", "babies",
    "newborn", "preschooler", "kindergartener", "kindergartner", "kindergarten", "schoolgirl", "schoolboy",
    "schoolchild", "schoolchildren", "schoolkid", "minor", "underage", "underaged", "teen", "teenage",
    "teenaged", "teenager", "teenie", "teeny", "preteen", "tween", "adolescent", "adolescence",
    "youngster", "juvenile", "loli", "lolita", "shota", "pubescent", "prepubescent", "youth", "tyke",
    "schoolgirls", "grader", "graders",
    "middleschooler", "highschooler", "highschool", "middleschool", "gradeschooler", "stepdaughter", "girlchild",
    "boychild", "childlike", "boy", "boys", "schoolboys", "kindergarteners", "preteens", "tweens",
)
MINOR_PHRASES_EN = (
    "under age", "under aged", "under 18", "under eighteen", "not yet 18", "barely legal", "school uniform",
    "school uniforms", "elementary school", "elementary schooler", "middle school", "middle schooler",
    "high school", "high schools", "high school student", "high school girl", "high school boy", "high schooler",
    "junior high", "secondary school", "secondary schooler", "school girl", "school girls", "school boy", "school boys",
    "school kid", "school kids", "sixth grader", "seventh grader", "eighth grader", "ninth grader",
    "grade school", "grade schooler", "primary school", "pre school", "jr high", "junior high school", "girl scout", "boy scout", "cub scout",
    "little one", "little ones", "little lady", "little princess", "wee one", "young looking", "very young", "aged down", "flat chested child",
    "child like", "childlike body", "pre pubescent", "pre teen", "pre teens",
)
#: a young adjective followed (within two words) by one of these nouns indicates a minor
YOUNG_ADJECTIVES_EN = ("young", "younger", "little", "lil", "tiny", "small", "wee", "teen", "teenage", "baby")
YOUNG_NOUNS_EN = ("girl", "girls", "boy", "boys", "gurl", "gurls", "daughter", "daughters", "son", "sons",
                  "sister", "sisters", "brother", "brothers")

# French.
MINOR_WORDS_FR = forms(
    "enfant", "enfants", "gamin", "gamine", "gamins", "gamines", "gosse", "gosses", "mome", "momes",
    "bebe", "bebes", "nourrisson", "nourrissons", "bambin", "bambins", "fillette", "fillettes",
    "garconnet", "garconnets", "adolescent", "adolescente", "adolescents", "adolescentes", "ado", "ados",
    "preado", "preados", "preadolescent", "preadolescente", "preadolescents", "preadolescentes",
    "mineur", "mineure", "mineurs", "mineures", "collegien", "collegienne", "collegiens", "collegiennes",
    "lyceen", "lyceenne", "lyceens", "lyceennes", "ecolier", "ecoliere", "ecoliers", "ecolieres",
    "petiot", "petiote", "marmot", "mioche", "mioches", "puberte", "pubere", "impubere", "maternelle",
    "ce1", "ce2", "cm1", "cm2", "juvenile",
)
MINOR_PHRASES_FR = (
    "petite fille", "petites filles", "petit garcon", "petits garcons", "jeune fille", "jeunes filles",
    "jeune garcon", "jeunes garcons", "p tite fille", "ptite fille", "ecole primaire", "ecole maternelle",
    "eleve de primaire", "eleve de college", "eleves de college", "moins de 18 ans", "moins de dix huit ans",
    "pas encore majeur", "pas encore majeure", "uniforme scolaire", "en classe de", "en 6e", "en 5e", "en 4e",
    "en 3e", "en 6eme", "en 5eme", "en 4eme", "en 3eme", "de 6eme", "de 5eme", "de 4eme", "de 3eme",
)

# ---------------------------------------------------------------------------------------
# Sexual or nudity terms. English.
SEXUAL_WORDS_EN = forms(
    "nude", "nudes", "nudity", "naked", "nakedness", "sex", "sexy", "sexual", "sexually", "sexualised",
    "sexualized", "sexualise", "sexualize", "erotic", "erotica", "eroticism", "porn", "porno", "pornographic",
    "pornography", "nsfw", "hentai", "ecchi", "xxx", "r18", "lewd", "lust", "lustful", "horny", "aroused",
    "arousal", "orgasm", "intercourse", "blowjob", "handjob", "semen", "fetish", "fetishes", "bdsm",
    "bondage", "kinky", "uncensored", "genitals", "genitalia", "genital", "penis",
    "vagina", "vulva", "pussy", "boobs", "boob", "tits", "titties", "breasts", "nipple", "nipples", "areola",
    "areolas", "cleavage", "buttocks", "crotch", "cameltoe", "upskirt", "panty", "panties", "pantyshot",
    "lingerie", "underwear", "bikini", "topless", "bottomless", "unclothed", "undressed",
    "undressing", "undress", "disrobed", "disrobing", "skimpy", "molest", "molested", "molesting",
    "molestation", "raping", "grope", "groped", "groping", "fondle", "fondled", "fondling",
    "incest", "seduce", "seduced", "seducing", "seduction", "seductive", "seductively",
    "sensual", "sensually", "sultry", "flirtatious", "boudoir",
    "pinup", "playboy", "onlyfans", "stripper", "striptease", "stripping", "twerk", "twerking",
    "erection", "masturbate", "masturbating", "masturbation", "sexting", "smut", "smutty", "voluptuous",
    "busty", "lolicon", "nudist", "naturist", "ahegao", "futanari", "oppai", "r34",
    "rule34", "nudify", "nudified", "brothel", "prostitute", "prostitutes", "prostitution", "stripclub",
)
SEXUAL_PHRASES_EN = (
    "making love", "having sex", "spread legs", "legs spread", "spreading legs", "see through",
    "scantily clad", "barely clothed", "without clothes", "no clothes", "no clothing", "wearing nothing",
    "bare breasts", "bare breasted", "bare chested girl", "bare skin", "bare body", "strip tease", "lap dance",
    "bedroom eyes", "wet t shirt", "in the nude", "birthday suit", "au naturel", "pin up", "come hither",
    "sex appeal", "sexual pose", "sexy pose", "sex doll", "love doll", "strip club", "strip clubs", "sex club",
    "sex shop", "red light district", "sugar daddy", "sexually explicit", "explicit content", "explicit sex",
    "explicit nudity", "explicit photo", "explicit image", "hardcore porn", "being raped", "rape scene", "child rape",
    "in a thong", "wearing a thong", "thong bikini", "thong underwear", "g string", "provocative pose",
    "provocative poses", "provocative outfit", "provocative clothing", "dressed provocatively", "posing provocatively",
    "suggestive pose", "suggestive poses", "posing suggestively", "suggestive outfit",
)
# French.
SEXUAL_WORDS_FR = forms(
    "nu", "nue", "nus", "nues", "nudite", "denude", "denudee", "denudes", "denudees", "deshabille",
    "deshabillee", "deshabilles", "deshabillees", "devetu", "devetue", "devetus", "devetues", "sexe",
    "sexuel", "sexuelle", "sexuels", "sexuelles", "sexuellement", "sexualise", "sexualisee", "sexualises",
    "sexualisees", "erotique", "erotiques", "erotisme", "pornographique", "pornographiques", "pornographie",
    "seins", "tetons", "mamelons", "fesses",
    "aguicheur", "aguicheuse", "aguicheurs", "aguicheuses", "lascif", "lascive", "lascifs",
    "lascives", "sensuel", "sensuelle", "sensuels", "sensuelles",
    "attouchement", "attouchements", "viol", "violee", "violees", "inceste", "fellation",
    "partouze", "effeuillage", "deshabillage",
    "libertin", "libertine", "charnel", "charnelle", "ebats", "coit", "nichons", "pubis", "salope", "salopes",
    "pute", "putes", "cochonne", "cochonnes", "bandante", "prostituee", "prostituees", "prostitution",
)
SEXUAL_PHRASES_FR = (
    "sous vetements", "sous vetement", "soutien gorge", "a poil", "en petite tenue", "seins nus",
    "photo de charme", "photos de charme", "agression sexuelle", "faire l amour", "pose suggestive",
    "poses suggestives", "tenue legere", "tenue sexy", "strip tease", "sans vetements", "sans vetement",
    "tout nu", "toute nue", "tous nus", "toutes nues", "en string", "un string", "maison close", "club de strip",
    "boite de strip", "en culotte", "sa culotte", "petite culotte", "culotte en dentelle", "pose provocante",
    "poses provocantes", "tenue provocante", "tenues provocantes", "pose suggestive", "poses suggestives",
    "tenue suggestive",
)

#: words that are sexual only next to a minor term (within ``WEAK_DISTANCE`` words): "a provocative
#: poster for teens" is not, "écolière provocante" is
WEAK_SEXUAL_WORDS = forms(
    "explicit", "provocative", "provocatively", "suggestive", "suggestively", "thong", "thongs", "provocant",
    "provocante", "provocants", "provocantes", "suggestif", "suggestifs", "suggestives", "obscene", "obscenes",
)
WEAK_DISTANCE = 3

# ---------------------------------------------------------------------------------------
# Allow-list: benign compounds removed from the text before the lexicons are matched
# (each is a regular expression over normalised text, on word boundaries).
ALLOW_PHRASES = (
    # food, make-up, colours, fashion
    r"naked cakes?", r"naked (?:drip )?cake", r"gateaux? nus?", r"nude (?:lipsticks?|lips?|lip gloss|makeup|make up|"
    r"colou?rs?|tones?|shades?|heels|shoes|pumps|sandals|palettes?|nails?|polish|beige|pink|eyeshadow|blush|"
    r"manicure|stockings?|tights|dress(?:es)?|gowns?|fabric|leather|colou?red|toned|walls?|paint|interior|decor|linen|"
    r"bedding|curtains|cushions?|rugs?|sofa|ceramics?|vases?|ballet flats|flats|sneakers|boots|bags?|handbags?|"
    r"tones?|hues?)", r"nude and (?:white|pink|beige|gold|black|cream|grey|gray|brown)",
    r"sex (?:education|ed)", r"same sex", r"opposite sex", r"ursa minor", r"asia minor",
    r"(?:rouge a levres|maquillage|teinte|vernis|couleur|ton|escarpins|chaussures|robe) nude",
    r"(?:colou?r|tone|shade) nude", r"naked (?:eye|flame|truth|ambition|bike|motorcycle|mole rats?|wire|steel|"
    r"bulb|lightbulb|branches|trees?|walls?|juice|smoothie)",
    r"baby (?:spinach|shower|blue|pink|carrots?|corn|grand(?: piano)?|back ribs|s breath|breath|bump|doll|"
    r"oil|food|bottle|monitor|stroller|shoes|clothes|formula|powder|potatoes|kale|arugula|leaf|leaves|"
    r"bok choy|octopus|squid|elephant|animals?|goats?|lambs?|birds?|turtle|tooth|teeth)", r"babydoll(?: dress)?",
    r"bebe (?:epinards?|carottes?)", r"pousses? d epinards?",
    r"kid (?:goats?|gloves?|leather|mohair)", r"goat kids?", r"kid friendly", r"child friendly", r"child safe",
    r"child proof", r"childproof", r"kid safe", r"family friendly", r"adapte aux enfants",
    r"minor (?:league|leagues|key|keys|chord|chords|scale|scales|arcana|planets?|details?|changes?|injur(?:y|ies)|"
    r"repairs?|adjustments?|roles?|characters?|flaws?|scratch(?:es)?|edits?|detail)",
    r"(?:symphony|sonata|concerto|prelude|fugue|nocturne|etude|quartet|suite|mass|requiem|waltz|piece)"
    r"(?: no \d+)? in [a-g](?: sharp| flat)? minor", r"[a-g](?: sharp| flat)? minor (?:key|chord|scale)",
    r"ligue mineure", r"(?:la|do|re|mi|fa|sol|si)(?: diese| bemol)? mineur", r"(?:accord|gamme|tonalite) mineure?",
    r"pieds nus", r"nu pieds", r"tete nue", r"tetes nues", r"mains nues", r"a mains nues", r"a l oeil nu",
    r"oeil nu", r"torses? nus?", r"bras nus", r"jambes nues", r"epaules nues", r"dos nu",
    r"(?:blue|great|coal|marsh|willow|crested|long tailed|bearded) tits?", r"(?:bottle|teat) nipples?",
    r"nipple (?:cream|shields?)", r"(?:summa |magna )?cum laude", r"sexe (?:du bebe|de l enfant|des bebes)",
    r"sex reveal", r"murs? nus?", r"arbres? nus?", r"branches nues", r"chat nu", r"sols? nus?", r"pieces? nues?",
    r"chambres? nues?", r"fils? nus?", r"planchers? nus?", r"bois nu", r"beton nu", r"pierres? nues?",
    r"ampoules? nues?", r"toiles? nues?", r"paysages? nus?",
    r"chicken breasts?", r"turkey breasts?", r"duck breasts?", r"breast (?:stroke|cancer awareness)",
    r"bikini (?:atoll|bottom)", r"teen titans", r"canteens?", r"sweet sixteen cake", r"pussy ?cats?",
    r"pussy willows?", r"strip (?:mall|lights?|steak)", r"comic strips?", r"youth (?:hostel|center|centre)",
    r"sex of the (?:puppy|kitten|foal|calf|chick|animal)",
)

# ---------------------------------------------------------------------------------------
# Requests for a recognisable real private person.
PRIVATE_PATTERNS = (
    r"(?:my|our|his|her|their) (?:neighbou?rs?|coworkers?|co workers?|colleagues?|classmates?|ex|ex wife|"
    r"ex husband|ex girlfriend|ex boyfriend|girlfriend|boyfriend|boss|teacher|landlord|landlady|roommates?|"
    r"flatmates?|crush|tenant|employee|student|nanny|babysitter)",
    r"real (?:private )?person named", r"photo of (?:a )?private (?:person|individual)",
    r"(?:mon|ma|mes|notre|nos) (?:voisin|voisine|voisins|voisines|collegue|collegues|ex|patron|patronne|"
    r"chef|prof|professeur|professeure|coloc|colocataire|camarade de classe|proprietaire|nounou|baby sitter)",
    r"vraie personne (?:nommee|appelee)", r"personne privee reelle",
)

# ---------------------------------------------------------------------------------------
# Ages. Number words 1..17 (English, French); the tens that make them part of an adult age.
AGE_WORDS_EN = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen")
TENS_EN = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred")
AGE_WORDS_FR = ("un", "une", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
                "douze", "treize", "quatorze", "quinze", "seize", "dix sept")
TENS_FR = ("vingt", "trente", "quarante", "cinquante", "soixante", "et", "cent", "dix")
