"""The word lists of the content policy, English and French, in normalised form.

Every entry is written as ``policy.normalise`` leaves text: lower case, no
accents, hyphens and apostrophes as spaces. Single words are looked up token by
token (a plural ``s`` / ``x`` / ``es`` is also tried without it); entries with a
space are phrases matched on word boundaries. The ``*_PATTERNS`` tuples and
``ALLOW_PHRASES`` hold regular expressions over the same normalised text; the
frozensets after the private-person section (``AGED_THINGS``, ``UNITS``,
``DEPICTIONS`` ...) are single words that the rules in ``policy`` look at around a
match.

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
    "bairn", "bairns", "moppet", "moppets", "rugrat", "rugrats", "youngling", "younglings",
    "nymphet", "nymphets", "schoolage", "primaryschooler",
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
    "elementary age", "school age", "school aged", "primary school age", "preschool age", "middle school age",
    "kindergarten age", "not yet eighteen", "younger than 18", "younger than eighteen", "below 18", "not yet legal",
    "primary schooler", "primary schoolers", "grade schoolers", "early teens", "young teens",
)
#: a young adjective followed (within two words) by one of these nouns indicates a minor
YOUNG_ADJECTIVES_EN = ("young", "younger", "little", "lil", "tiny", "small", "wee", "teen", "teenage", "baby")
YOUNG_NOUNS_EN = ("girl", "girls", "boy", "boys", "gurl", "gurls", "daughter", "daughters", "son", "sons",
                  "sister", "sisters", "brother", "brothers", "lad", "lads", "lass", "lasses", "lassie", "niece",
                  "nieces", "nephew", "nephews", "cousin", "cousins", "stepsister", "stepsisters")

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
    "garcon", "garcons", "mouflet", "mouflette", "mouflets", "loupiot", "loupiote", "loupiots", "minot", "minots",
    "nymphette", "nymphettes", "jeunot", "jeunotte", "jeunette", "jeunettes",
)
MINOR_PHRASES_FR = (
    "petite fille", "petites filles", "petit garcon", "petits garcons", "jeune fille", "jeunes filles",
    "jeune garcon", "jeunes garcons", "p tite fille", "ptite fille", "ecole primaire", "ecole maternelle",
    "eleve de primaire", "eleve de college", "eleves de college", "moins de 18 ans", "moins de dix huit ans",
    "pas encore majeur", "pas encore majeure", "uniforme scolaire", "en classe de", "en 6e", "en 5e", "en 4e",
    "en 3e", "en 6eme", "en 5eme", "en 4eme", "en 3eme", "de 6eme", "de 5eme", "de 4eme", "de 3eme",
    "au college", "au lycee", "du college", "du lycee", "en cp", "bout de chou", "jeune ado", "jeunes ados",
)
#: a pupil ("élève") is a schoolchild, but "élevé" (high) folds to the same letters: "élève" counts after a
#: determiner or before a school ("une élève", "l'élève", "élève de seconde"), not in "contraste élevé"
ELEVE_BEFORE = ("un", "une", "l", "le", "la", "les", "des", "cet", "cette", "ces", "mon", "ma", "mes", "ton", "ta",
                "tes", "son", "sa", "ses", "notre", "nos", "votre", "vos", "leur", "leurs", "jeune", "jeunes",
                "petit", "petite", "petits", "petites", "bon", "bonne", "bons", "bonnes", "meilleur", "meilleure",
                "deux", "trois", "quelques", "plusieurs")
ELEVE_SCHOOLS = ("primaire", "college", "lycee", "ecole", "maternelle", "cp", "ce1", "ce2", "cm1", "cm2", "6e", "5e",
                 "4e", "3e", "2nde", "6eme", "5eme", "4eme", "3eme", "seconde", "premiere", "terminale", "sixieme",
                 "cinquieme", "quatrieme", "troisieme", "classe")

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
    "negligee", "negligees", "undies", "knickers", "tanga", "monokini", "garter", "garters", "fishnets",
    "slut", "sluts", "slutty", "whore", "whores", "hooker", "hookers", "cumshot", "creampie", "dildo", "dildos",
    "vibrator", "gangbang", "threesome", "orgy", "orgies", "fuck", "fucking", "fucked", "deepthroat", "anal",
    "raunchy", "titty", "nipslip", "downblouse", "sexier", "sexiest", "seminude", "seminaked",
    "halfnaked", "nudie", "nudies",
    # slang and algospeak spellings ("seggs", "nekkid")
    "sexxy", "sexi", "seksi", "secks", "seggs", "nekkid", "nakid", "neked", "nakey", "noods", "nudez", "pron",
    "voyeur", "voyeurs", "voyeurism", "voyeuristic", "voyeurisme",
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
    "barely dressed", "scantily dressed", "half dressed", "partially dressed", "partly dressed", "half undressed",
    "skinny dipping", "skinny dip", "wardrobe malfunction", "nip slip", "garter belt", "fishnet stockings",
    "clothing optional", "clothes off", "no underwear",
    "not fully clothed", "partially clothed", "partly clothed", "half clothed", "not wearing anything",
    "not wearing any clothes", "not wearing clothes", "peeping tom", "in the buff",
    "wearing only a smile", "stark naked", "wedding night", "escort girl", "escort girls", "call girl", "call girls",
    "teen escort", "child escort",
)
#: sexual phrases that need a pattern (regular expressions over normalised text)
SEXUAL_PATTERNS_EN = (
    # clothing being taken off: "her shirt off", "taking off her clothes", "lifting her skirt"
    r"(?:her|their) (?:shirt|top|bra|dress|skirt|clothes|panties|pants|underwear|swimsuit|bikini|nightgown) "
    r"(?:off|removed)",
    r"(?:her|their) (?:shirt|top|dress|skirt|nightgown) (?:up|lifted|pulled up)",
    r"(?:taking|takes|took|pulling|pulls|pulled|lifting|lifts|lifted|removing|removes|removed|slipping|slips|"
    r"tugging|hitching|hitches) (?:off |down |up )?her (?:clothes|shirt|top|bra|dress|skirt|panties|pants|"
    r"underwear|swimsuit|bikini|nightgown|towel)",
    r"(?:taking|takes|took|removing|removes|removed|pulling|pulls|pulled) (?:off |down )?(?:his|their) "
    r"(?:clothes|underwear|pants|swimsuit|trunks|briefs|boxers)",
    r"(?:his|her|their) (?:pants|trousers|shorts|underwear|panties|knickers|briefs|boxers|swimsuit|trunks) "
    r"(?:down|off|pulled down|around (?:his|her|their) ankles)",
    # a minor showering: nudity implied (a baby's bath is not on this list)
    r"(?:taking|takes|took) a shower", r"in the showers?", r"under the shower",
    # see-through and revealing clothing, risqué photographs
    r"(?:sheer|transparent) (?:negligees?|nightgowns?|nighties?|lingerie|tops?|blouses?|dress(?:es)?|shirts?|"
    r"robes?|bodysuits?|swimsuits?|bikinis?|clothes|clothing|underwear|panties|leotards?)",
    r"(?:naughty|racy|risque|steamy|sultry|lewd) (?:poses?|photos?|pictures?|pics?|images?|"
    r"selfies?|photoshoots?|photo shoots?|shots?|outfits?|videos?)",
    r"naughty (?:schoolgirls?|school girls?|nurse)",
    r"revealing (?:outfits?|clothes|clothing|dress(?:es)?|tops?|swimsuits?|bikinis?|poses?|costumes?)",
    r"spreading (?:her|his|their) legs",
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
    "jarretelle", "jarretelles", "guepiere", "guepieres", "sodomie", "cunnilingus", "ejaculation", "orgasme",
    "orgasmes", "orgie", "orgies", "echangiste", "echangistes", "chaudasse", "pornos", "branlette", "masturber",
    "nymphomane", "seductrice", "seductrices", "seminue", "seminu", "tanga", "monokini",
)
SEXUAL_PHRASES_FR = (
    "sous vetements", "sous vetement", "soutien gorge", "a poil", "en petite tenue", "seins nus",
    "photo de charme", "photos de charme", "agression sexuelle", "faire l amour", "pose suggestive",
    "poses suggestives", "tenue legere", "tenue sexy", "strip tease", "sans vetements", "sans vetement",
    "tout nu", "toute nue", "tous nus", "toutes nues", "en string", "un string", "maison close", "club de strip",
    "boite de strip", "en culotte", "sa culotte", "petite culotte", "culotte en dentelle", "pose provocante",
    "poses provocantes", "tenue provocante", "tenues provocantes", "pose suggestive", "poses suggestives",
    "tenue suggestive",
    "jambes ecartees", "jambes ecartes", "cuisses ecartees", "jambes ouvertes", "cuisses ouvertes",
    "porte jarretelles", "bas resille", "collants resille", "en slip", "petit slip", "en calecon",
    "sans culotte", "sans soutien gorge", "sans rien sur le dos", "t shirt mouille", "regard seducteur",
    "regard de braise", "photo intime", "photos intimes", "pose intime", "poses intimes",
    "en tenue d eve", "en tenue d adam", "plus simple appareil", "sans rien sur elle", "sans rien sur lui",
    "maillot deux pieces", "maillot de bain deux pieces", "nuit de noces", "escort girl", "call girl",
)
SEXUAL_PATTERNS_FR = (
    # "photo coquine", "tenue osée", "nuisette transparente"
    r"(?:photos?|poses?|tenues?|lingerie|selfies?|images?|videos?|seances? photos?) (?:coquines?|osees?|"
    r"intimes?|sulfureuses?|torrides?|risquees?|ole ole)",
    r"(?:tenues?|robes?|nuisettes?|chemises?|chemisiers?|hauts?|tops?|vetements?|maillots?|bodys?|culottes?|"
    r"lingerie|deshabilles?) (?:transparente?s?|moulante?s? et transparente?s?|en voile)",
    r"(?:pantalon|culotte|slip|short|calecon|jupe|robe|maillot) (?:baisse|baissee|baisses|baissees|releve|relevee|"
    r"enleve|enlevee|retire|retiree|souleve|soulevee)",
    r"sous la douche", r"(?:prend|prends|prenant|prendre) (?:une|sa|la) douche", r"dans la douche",
    r"(?:enlev\w*|retir\w*|ot\w*|soulev\w*|baiss\w*) (?:sa|ses|son) (?:culotte|jupe|robe|haut|t shirt|"
    r"soutien gorge|vetements|maillot|slip|pantalon|nuisette|serviette)",
)

#: long words also matched with one letter wrong, missing, extra or swapped ("colegienne", "schoolgril");
#: only words whose one-letter neighbours are not other words ("panties" / "parties" is left out)
FUZZY_WORDS = forms(
    "teenager", "teenagers", "schoolgirl", "schoolgirls", "schoolboy", "schoolboys", "adolescent", "adolescente",
    "adolescents", "adolescentes", "underage", "underaged", "collegien", "collegienne", "collegiens",
    "collegiennes", "lyceenne", "lyceennes", "ecoliere", "ecolieres", "children", "toddlers", "kindergarten",
    "kindergartner", "preadolescent", "preadolescente", "prepubescent", "fillette", "fillettes", "youngster",
    "youngsters", "nourrisson", "pedophile", "pedopornographie", "lingerie", "underwear", "pornography",
    "pornographic", "pornographie", "pornographique", "masturbation", "deshabillee", "sexualised", "sexualized",
    "sexualisee", "nakedness",
)

#: words that are sexual only next to a minor term (within ``WEAK_DISTANCE`` words): "a provocative
#: poster for teens" is not, "écolière provocante" is
WEAK_SEXUAL_WORDS = forms(
    "explicit", "provocative", "provocatively", "suggestive", "suggestively", "thong", "thongs", "provocant",
    "provocante", "provocants", "provocantes", "suggestif", "suggestifs", "suggestives", "obscene", "obscenes",
    "nuisette", "nuisettes", "pucelle", "pucelles", "allumeuse", "allumeuses",
)
#: words that are sexual directly before a minor term ("hot teen", "hot 14 yo", "hot blonde teen"), not
#: elsewhere ("hot dogs for kids", "a hot summer day")
HOT_WORDS = forms("hot", "hotter", "hottest", "hawt")
#: what may stand between a hot word and the minor term
HOT_FILLERS = forms("blonde", "blond", "brunette", "redhead", "young", "little", "cute", "skinny", "petite", "tiny",
                    "asian", "latina", "ebony", "busty", "slim", "small")
#: sexual words matched as whole tokens only ("bra", but not French "bras", arms)
EXACT_SEXUAL_WORDS = forms("bra")
#: tokens that contain a sexual word but are not sexual ("the river snaked")
NOT_SEXUAL_TOKENS = forms("snaked", "snakedly")
WEAK_DISTANCE = 3

# ---------------------------------------------------------------------------------------
# Allow-list: benign compounds removed from the text before the lexicons are matched
# (each is a regular expression over normalised text, on word boundaries).
ALLOW_PHRASES: tuple[str, ...] = (
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
    # a product, not a child wearing it: "kids' underwear multipack, packaging product shot"
    r"(?<!\sin\s)(?<!\swearing\s)(?<!\sonly\s)(?<!\stheir\s)(?<!\shis\s)(?<!\sher\s)(?<!\sen\s)"
    r"(?:underwear|briefs|boxers|knickers|undies|socks and underwear) (?:multi ?packs?|packs?|packaging|package|"
    r"boxes|box|flat ?lay|folded|on (?:a )?hangers?|product (?:shot|photo|photography)|catalogue|catalog)",
    r"(?:multi ?packs?|packs?|packaging|box|flat ?lay|set) (?:of )?(?:kids |children s |boys |girls |baby )?"
    r"(?:underwear|briefs|boxers|knickers|undies)",
    r"(?:lots?|packs?|multipacks?|emballages?|boites?) de (?:\d+ )?(?:sous vetements|culottes|slips|calecons)",
    r"(?:sous vetements|culottes|slips|calecons) (?:en lot|pliee?s|sur cintres?|emballage|packaging)",
    # words that name a minor only in these compounds
    r"beaux? gosses?", r"much ado", r"nu (?:metal|jazz|disco|soul|skool|school|wave|gaze|rave|funk|age)",
    r"(?:coupe|style|look|allure) (?:a la )?gamine", r"gamine (?:haircut|hairstyle|style|look|cut|pixie|charm)",
    r"mineurs? (?:de fond|de charbon|d or|de la mine|de cuivre|de sel)", r"sea urchins?",
    r"boys? bands?", r"college de france", r"baby (?:boomers?|boom|steps|face|faced|sitter|sitting|monitor)",
    r"babyface", r"inner child", r"enfant interieur", r"slips? de bain",
    r"garcons? (?:de cafe|d honneur|d etage|de courses|boucher)", r"vieux garcons?", r"vie de garcon",
    r"(?:les|un|des) sans culottes?", r"eleves? (?:infirmiers?|infirmieres?|officiers?|avocats?|pilotes?|ingenieurs?|"
    r"des beaux arts|de l ena|de polytechnique)", r"nue propriete", r"nue proprietaire",
    r"(?:la )?verite (?:toute )?nue", r"nude cakes?", r"teenage mutant ninja turtles?",
    r"(?:mother|native) (?:tongue|language|country|ship|board)", r"chefs? d oeuvres?",
    r"(?:the )?naked (?:chef|lunch|gun|singularity|ape)",
    # titles that begin with "my" / "mon" (a film, a prayer, a suite), not the writer's relations
    r"my neighbou?r totoro", r"mon voisin totoro", r"mon oncle (?:de )?(?:jacques )?tati", r"our father (?:who|which) art",
    r"(?:the|an?) our father", r"(?:le|un) notre pere", r"notre pere qui es", r"ma mere l oye",
    # a sexual term that is negated: "no nudity", "non-sexual", "no nudity or sexual content", "pas de nudité"
    r"(?:no|not|without|zero|nothing|non|never|avoid|free of|free from|absolutely no) (?:NEG)(?: (?:or|and|nor) (?:NEG))*"
    r"(?: content| themes?| elements?| material| imagery)?",
    r"(?:pas de|sans|aucune?|non|ni|jamais de|rien de|zero) (?:NEGFR)(?: (?:ni|ou|et) (?:NEGFR))*"
    r"(?: contenu)?",
)

#: the sexual terms a negation takes out of the text ("no nudity"), written into ALLOW_PHRASES below
NEGATABLE_EN = ("nudity", "nude", "naked", "nakedness", "nsfw", "sexual", "sexualised", "sexualized", "sexualization",
                "sexualisation", "sexy", "erotic", "erotica", "lingerie", "suggestive", "explicit", "sexual content",
                "explicit content", "adult content", "sexual themes", "suggestive content", "revealing clothing",
                "underwear", "cleavage")
NEGATABLE_FR = ("nudite", "nu", "nue", "nus", "nues", "sexuel", "sexuelle", "sexuels", "sexuelles", "sexy",
                "erotique", "erotisme", "lingerie", "suggestif", "suggestive", "contenu sexuel", "contenu adulte",
                "sous vetements", "connotation sexuelle")
ALLOW_PHRASES = tuple(p.replace("NEGFR", "|".join(NEGATABLE_FR)).replace("NEG", "|".join(NEGATABLE_EN))
                      for p in ALLOW_PHRASES)

# ---------------------------------------------------------------------------------------
# Requests for a recognisable real private person: someone named by their relation to the writer
# ("my neighbour", "ma collègue", "my sister-in-law", "a friend of mine", "mon amie Claire"),
# a person placed by the writer's own surroundings ("the cashier at my local supermarket", "la
# boulangère de mon quartier"), or an explicit "real person named ...". A third person ("a woman and
# her boyfriend") is a character, not a real person: only the first person counts.
RELATIONS_EN = (
    "neighbour", "neighbours", "neighbor", "neighbors", "coworker", "coworkers", "co worker", "co workers",
    "colleague", "colleagues", "classmate", "classmates", "schoolmate", "schoolmates", "ex", "exes",
    "ex wife", "ex husband", "ex girlfriend", "ex boyfriend", "ex partner", "girlfriend", "boyfriend", "gf", "bf",
    "wife", "husband", "spouse", "partner", "fiance", "fiancee", "lover", "boss", "manager", "supervisor",
    "employer", "employee", "employees", "teacher", "teachers", "tutor", "coach", "trainer", "professor",
    "landlord", "landlady", "tenant", "tenants", "roommate", "roommates", "flatmate", "flatmates", "housemate",
    "housemates", "crush", "student", "students", "pupil", "pupils", "nanny", "babysitter", "mom", "mum", "mommy",
    "mummy", "mother", "dad", "daddy", "father", "parents", "sister", "sisters", "brother", "brothers", "sibling",
    "siblings", "son", "sons", "daughter", "daughters", "kid", "kids", "child", "children", "baby", "aunt", "auntie",
    "uncle", "cousin", "cousins", "niece", "nieces", "nephew", "nephews", "grandma", "grandmother", "granny",
    "grandpa", "grandfather", "grandparents", "grandson", "granddaughter", "grandchild", "grandchildren",
    "grandkids", "stepmom", "stepmother", "stepdad", "stepfather", "stepsister", "stepbrother", "stepson",
    "stepdaughter", "step mom", "step mother", "step dad", "step father", "step sister", "step brother",
    "step son", "step daughter", "friend", "friends", "best friend", "bestie", "bff", "buddy", "doctor",
    "dentist", "therapist", "nurse", "secretary", "client", "patient",
    "patients", "mailman", "postman", "pastor", "hairdresser", "barber", "family members",
)
RELATIONS_FR = (
    "voisin", "voisine", "voisins", "voisines", "collegue", "collegues", "camarade", "camarades",
    "camarade de classe", "camarades de classe", "ex", "ex femme", "ex mari", "ex copine", "ex copain",
    "patron", "patronne", "chef", "prof", "profs", "professeur", "professeure", "coloc", "colocataire",
    "colocataires", "proprietaire", "locataire", "locataires", "nounou", "baby sitter", "femme", "mari", "epouse",
    "epoux", "mere", "maman", "pere", "papa", "parents", "soeur", "soeurs", "frere", "freres", "fils", "fille",
    "filles", "enfant", "enfants", "bebe", "tante", "oncle", "cousin", "cousine", "cousins", "cousines", "niece",
    "nieces", "neveu", "neveux", "grand mere", "grand pere", "mamie", "mamy", "papi", "papy", "grands parents",
    "petit fils", "petite fille", "petits enfants", "belle mere", "beau pere", "belle soeur", "beau frere",
    "belle fille", "beau fils", "demi soeur", "demi frere", "copain", "copains", "copine", "copines", "petit ami",
    "petite amie", "petit copain", "petite copine", "ami", "amie", "amis", "amies", "meilleur ami",
    "meilleure amie", "pote", "potes", "fiance", "fiancee", "compagnon", "compagne", "conjoint", "conjointe",
    "amoureux", "amoureuse", "cheri", "cherie", "medecin", "docteur", "dentiste", "coach", "entraineur",
    "maitresse", "maitre", "instituteur", "institutrice", "eleve", "eleves", "etudiant", "etudiante",
    "etudiants", "etudiantes", "client", "cliente", "employe", "employee", "employes",
    "secretaire", "directeur", "directrice", "infirmiere", "infirmier", "psy", "kine",
)
#: people by role, placed in the writer's surroundings ("the cashier at my supermarket")
PEOPLE_EN = (
    "girl", "girls", "boy", "boys", "woman", "women", "man", "men", "guy", "guys", "lady", "ladies", "person",
    "people", "kid", "kids", "child", "children", "teen", "teens", "cashier", "waitress", "waiter", "barista",
    "nurse", "doctor", "receptionist", "secretary", "teacher", "teachers", "student", "students", "pupil",
    "pupils", "bartender", "clerk", "couple", "janitor", "lifeguard", "trainer", "instructor", "coach",
    "manager", "mom", "moms", "mother", "mothers", "dad", "dads", "father", "cheerleader", "cheerleaders",
    "someone", "somebody", "neighbour", "neighbor",
)
PLACES_EN = (
    "street", "road", "block", "building", "apartment", "apartment building", "school", "class", "classroom",
    "office", "work", "workplace", "job", "company", "gym", "church", "neighbourhood", "neighborhood", "town",
    "village", "supermarket", "store", "shop", "cafe", "bar", "restaurant", "bank", "team", "club", "college",
    "university", "campus", "dorm", "hospital", "clinic", "daycare", "bus stop", "pharmacy", "bakery", "area",
)
PEOPLE_FR = (
    "fille", "filles", "garcon", "garcons", "femme", "femmes", "homme", "hommes", "gars", "mec", "mecs", "nana",
    "nanas", "personne", "gens", "enfant", "enfants", "ado", "ados", "boulanger", "boulangere", "caissier",
    "caissiere", "serveur", "serveuse", "infirmier", "infirmiere", "vendeur", "vendeuse", "coiffeur", "coiffeuse",
    "pharmacien", "pharmacienne", "secretaire", "etudiant", "etudiante", "eleve", "eleves", "medecin", "facteur",
    "factrice", "concierge", "gardien", "gardienne", "bibliothecaire", "maitresse", "prof", "mere", "meres",
    "pere", "peres", "quelqu un", "voisin", "voisine",
)
PLACES_FR = (
    "quartier", "rue", "immeuble", "residence", "ecole", "classe", "bureau", "boulot", "travail", "entreprise",
    "boite", "salle de sport", "club", "village", "ville", "supermarche", "magasin", "boulangerie", "lycee",
    "college", "fac", "universite", "equipe", "pharmacie", "epicerie", "cafe", "bar",
)
#: the writer's neighbours without "my": "the woman who lives next door to me", "la femme d'à côté de chez moi"
NEXT_DOOR_PATTERNS = (
    r"next door to (?:me|us)", r"(?:lives?|living) (?:next door|across the (?:street|hall|road)|upstairs|"
    r"downstairs) (?:from|to) (?:me|us)",
    r"(?:a cote|en face|au dessus|en dessous) de chez (?:moi|nous)", r"(?:habite|habitent|vit|vivent) (?:a cote|en face|"
    r"au dessus|en dessous|sur mon palier|dans mon immeuble)",
)
#: after "my X's": a person or a likeness ("my neighbour's face", "my son's teacher"); anything else is a thing
#: the person owns or made ("my neighbour's garden", "my kid's drawing")
POSSESSED_PERSONS = frozenset((
    "face", "faces", "body", "head", "photo", "photos", "picture", "pictures", "pic", "pics", "portrait", "selfie",
    "selfies", "likeness", "image", "images", "video", "videos", "nudes", "lookalike", "boobs", "breasts", "butt",
    "legs", "feet", "girl", "boy", "woman", "man", "wife", "husband", "girlfriend", "boyfriend",
))
#: before "my" / "ma": the person is the recipient or the author, not the subject ("a card for my mum")
NOT_SUBJECT_BEFORE = frozenset(("for", "to", "from", "by", "pour", "a", "par"))
#: before "of my" / "de ma": a depiction or a person ("a photo of my neighbour", "la fille de mes voisins");
#: anything else is a possessive ("le jardin de ma voisine", "the garden of my neighbour"). French "un
#: dessin / un tableau de mon fils" is a drawing he made, so only the English "drawing of" counts.
DEPICTIONS = frozenset((
    "photo", "photos", "photograph", "photographs", "picture", "pictures", "pic", "pics", "image", "images",
    "portrait", "portraits", "painting", "paintings", "drawing", "drawings", "sketch", "sketches", "selfie",
    "selfies", "video", "videos", "clip", "render", "rendering", "illustration", "caricature", "cartoon", "statue",
    "sculpture", "bust", "likeness", "deepfake", "deepfakes", "face", "faces", "body", "bodies", "head", "version",
    "copy", "clone", "lookalike", "avatar", "headshot", "snapshot", "shot", "shots", "view", "scene", "doll",
    "figure", "figurine", "poster", "meme", "gif", "photoshoot", "art", "fanart", "nude", "nudes", "model",
    "rendu", "film", "montage",
    "visage", "visages", "corps", "tete", "buste", "sosie", "poupee", "figurine", "affiche", "cliche", "cliches",
    "seins", "fesses", "nue", "nu", "nues", "nus", "lingerie",
    "girl", "girls", "boy", "boys", "woman", "women", "man", "men", "daughter", "daughters", "son", "sons",
    "wife", "husband", "friend", "friends", "kid", "kids", "child", "children", "baby", "sister", "brother",
    "fille", "filles", "fils", "garcon", "garcons", "femme", "femmes", "homme", "hommes", "mari", "enfant",
    "enfants", "bebe", "bebes", "ami", "amie", "amis", "amies", "copine", "copain", "soeur", "frere", "mere",
    "pere", "cousin", "cousine", "niece", "neveu",
))
PRIVATE_PATTERNS = (
    r"real (?:private )?(?:person|people|individual) (?:named|called)",
    r"(?:coworker|co worker|colleague|neighbou?r|classmate|roommate|collegue|voisine?|camarade de classe) "
    r"(?:named|called|nommee?|appelee?|qui s appelle)", r"photo of (?:a )?private (?:person|individual)",
    r"(?:someone|somebody|a person|people|a girl|a woman|a man|a guy|a boy|a lady|the stranger|a stranger|"
    r"the girl|the woman|the man|the guy|the boy|the lady|the person) i (?:know|knew|met|work with|saw|spotted|"
    r"photographed|followed|see every day)",
    r"vraie personne (?:nommee|appelee)", r"personne privee reelle",
    r"(?:quelqu un|une personne|des gens|une fille|une femme|un homme|un mec|une nana|un garcon|l inconnue?|"
    r"une inconnue?|la fille|la femme|l homme|le garcon|le mec) que (?:je connais|j ai (?:rencontree?|vue?|croisee?|"
    r"photographiee?|suivie?)|je (?:vois|croise) tous les jours)",
)
# ---------------------------------------------------------------------------------------
# Ages. Number words 1..17 (English, French); the tens that make them part of an adult age.
AGE_WORDS_EN = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen")
TENS_EN = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred")
AGE_WORDS_FR = ("un", "une", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
                "douze", "treize", "quatorze", "quinze", "seize", "dix sept")
TENS_FR = ("vingt", "trente", "quarante", "cinquante", "soixante", "et", "cent", "dix")

#: an age that belongs to a thing, not a person: "a 12 year old whisky", "un whisky de 12 ans"
AGED_THINGS = frozenset((
    "whisky", "whiskies", "whiskey", "scotch", "bourbon", "rum", "wine", "wines", "cognac", "brandy", "malt",
    "single", "port", "tawny", "cheese", "cheddar", "gouda", "parmesan", "balsamic", "vinegar", "tree", "trees",
    "oak", "bonsai", "house", "home", "building", "car", "truck", "bike", "motorcycle", "laptop", "computer",
    "phone", "dog", "dogs", "cat", "cats", "horse", "horses", "pony", "mare", "stallion", "colt", "filly", "cow",
    "goat", "parrot", "tortoise", "turtle", "fish", "bottle", "bottles", "vintage", "company", "business", "brand",
    "shop", "tradition", "relationship", "marriage", "friendship", "mortgage", "bond", "bonds", "loan", "boat",
    "vin", "vins", "rhum", "armagnac", "calvados", "porto", "fromage", "comte", "vinaigre", "arbre", "arbres",
    "chene", "maison", "immeuble", "batiment", "voiture", "velo", "moto", "ordinateur", "telephone", "chien",
    "chienne", "chiens", "chat", "chatte", "chats", "cheval", "jument", "chevaux", "poney", "vache", "chevre",
    "perroquet", "tortue", "poisson", "bouteille", "entreprise", "societe", "marque", "boutique", "relation",
    "mariage", "amitie", "credit", "pret", "contrat", "garantie", "bateau",
))
#: around a bare "N years" / "N ans" (no "old"): a duration, not an age ("for 10 years", "il y a dix ans")
DURATION_BEFORE = frozenset((
    "for", "after", "over", "in", "within", "every", "last", "past", "next", "first", "than", "since", "spent",
    "took", "takes", "depuis", "pendant", "durant", "apres", "dans", "en", "voila", "fait", "les",
))
DURATION_AFTER = frozenset((
    "ago", "later", "earlier", "after", "before", "of", "apart", "from", "in", "since", "on", "anniversary", "plan",
    "warranty", "contract", "guarantee", "lease", "younger", "older", "long", "running", "straight", "together",
    "married", "experience", "plus", "apres", "auparavant", "de", "d", "en", "que",
))
#: what follows "under 16", "turned 13" when it is a quantity, not an age
UNITS = frozenset((
    "minutes", "minute", "mins", "min", "seconds", "second", "secs", "hours", "hour", "hrs", "days", "day",
    "dollars", "dollar", "euros", "euro", "bucks", "pounds", "pound", "kg", "kilos", "lbs", "grams", "g", "miles",
    "mile", "km", "kilometers", "kilometres", "meters", "metres", "m", "feet", "ft", "inches", "inch", "cm", "mm",
    "degrees", "percent", "calories", "people", "persons", "guests", "players", "items", "ingredients", "steps",
    "words", "pages", "points", "stars", "floors", "stories", "storeys", "rooms", "mph", "seats", "pieces",
    "times", "cups", "tons", "tonnes", "laps", "corners", "o", "am", "pm", "oclock", "servings", "bars",
))
