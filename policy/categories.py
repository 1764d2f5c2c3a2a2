"""Word lists of the categories added to the content policy (issue #20), in normalised form
(as ``policy.normalise`` leaves text: lower case, no accents, punctuation as spaces).

* Spanish, German and Italian terms for the fixed categories (minors, sexual terms,
  violence), read from the moderation categories of the image APIs (OpenAI,
  https://platform.openai.com/docs/guides/moderation; Stability AI,
  https://stability.ai/use-policy) and written for this project;
* violence against children: ``VIOLENT_WORDS`` anywhere with a minor term,
  ``VIOLENT_NEAR_WORDS`` ("dead", "blood", "hit") only within ``VIOLENCE_DISTANCE``
  words of one ("a child mourning her dead dog" is not refused; "dead toddler" is);
* graphic gore, hateful or extremist symbols and propaganda, self-harm: the configurable
  categories, each with the benign compounds taken out first ("Gore-Tex", "blood orange",
  "suicide prevention hotline", a Hindu swastika);
* real people: cues that a request names a real person (known-person words such as
  "celebrity", "deepfake"; a colleague's department; a social-network photo), common first
  names for the "Firstname Lastname" shape (the forenames most given in the UK, US, France,
  Spain, Germany and Italy: https://www.ons.gov.uk/peoplepopulationandcommunity/birthsdeathsandmarriages/livebirths/bulletins/babynamesenglandandwales/2023,
  https://www.ssa.gov/oact/babynames/, https://www.insee.fr/fr/statistiques/3532172),
  and the words after which a name is an artist, not the subject ("by", "in the style of").
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------
# Spanish, German, Italian: minors and sexual terms (added to the English and French sets).
MINOR_WORDS_INTL = frozenset((
    # es
    "nina", "ninas", "nino", "ninos", "nena", "nenas", "nene", "nenes", "chiquilla", "chiquillo", "menor",
    "menores", "adolescente", "adolescentes", "colegiala", "colegialas", "colegial", "colegiales", "infantil",
    "criatura", "chavala", "chaval", "preadolescente", "pubertad", "prepuber", "impuber",
    # de
    "madchen", "madel", "junge", "jungen", "kinder", "kindes", "kleinkind", "kleinkinder", "saugling",
    "schulerin", "schulerinnen", "schuler", "schulmadchen", "minderjahrig", "minderjahrige", "minderjahrigen",
    "jugendliche", "jugendlicher", "jugendlichen", "teenagerin", "pubertat", "grundschulerin", "grundschuler",
    # it
    "bambina", "bambine", "bambino", "bambini", "ragazzina", "ragazzine", "ragazzino", "ragazzini",
    "minorenne", "minorenni", "adolescenti", "scolaretta", "scolarette", "scolaro", "neonata", "neonato",
    "fanciulla", "fanciullo", "pubescente", "prepubere", "liceale", "liceali", "puberta",
    # en additions
    "puberty", "prepuberty", "prepubertal",
))
MINOR_PHRASES_INTL = (
    "menor de edad", "menores de edad", "nina pequena", "nino pequeno", "escuela primaria", "uniforme escolar",
    "kleines madchen", "kleine madchen", "kleiner junge", "unter 18", "noch nicht volljahrig", "grundschule",
    "bambina piccola", "scuola media", "scuola elementare", "divisa scolastica", "sotto i 18",
    # en / fr additions: school years and puberty said another way
    "not hit puberty", "not reached puberty", "hasn t hit puberty", "hasn t reached puberty", "before puberty",
    "pre puberty", "avant la puberte", "pas encore pubere",
    # German "Kind" is English "kind": with an article or an adjective only
    "ein kind", "das kind", "dem kind", "einem kind", "eines kindes", "kleines kind", "totes kind", "nacktes kind",
    "mein kind", "dein kind", "sein kind", "ihr kind", "kind wird",
)
SEXUAL_WORDS_INTL = frozenset((
    # es
    "desnuda", "desnudas", "desnudo", "desnudos", "desnudez", "erotica", "erotico", "eroticas", "eroticos",
    "lenceria", "tetas", "pechos", "sensual", "seductora", "provocativa", "pornografia", "pornografico", "sexo",
    "semidesnuda", "encuerada",
    # de
    "nackt", "nackte", "nackter", "nacktes", "nackten", "nacktfoto", "nacktbild", "nacktbilder", "erotisch",
    "erotische", "erotischen", "sexuell", "sexuelle", "sexuellen", "unterwasche", "reizwasche",
    "brusten", "bruste", "verfuhrerisch", "verfuhrerische", "entkleidet", "halbnackt",
    # it
    "nuda", "nudo", "nudi", "nudita", "sessuale", "sessuali", "erotico", "erotiche", "erotici",
    "seducente", "seducenti", "spogliata", "spogliato", "svestita", "svestito", "seminuda", "tette",
    "seno", "porno",
    # fr / en additions
    "seduisante", "seduisantes", "seduisant", "aguichante", "aguichantes",
))
SEXUAL_PHRASES_INTL = (
    "ropa interior", "sin ropa", "en ropa interior", "en lenceria", "foto erotica", "pose sexy",
    "oben ohne", "ohne kleidung", "in unterwasche", "ohne bh",
    "biancheria intima", "senza vestiti", "in intimo", "a seno nudo", "in lingerie",
    # en / fr
    "explicit picture", "explicit pictures", "explicit pic", "explicit pics", "explicit shot", "explicit render",
    "explicit scene", "explicit video", "pose seduisante", "poses seduisantes", "regard seduisant",
    "photo explicite", "image explicite", "images explicites", "clothes removed", "with her clothes removed",
    "remove her clothes", "remove his clothes", "remove the clothes", "removing her clothes", "make her naked",
    "make him naked", "undress her", "undress him", "without her clothes", "sans ses vetements",
    "enlever ses vetements",
    "retire ses vetements", "deshabille la", "rendre nue",
)
#: ages: the number words 1..17 and "years" in Spanish, German, Italian (digits are shared)
AGE_WORDS_INTL = (
    "uno", "una", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "once", "doce",
    "trece", "catorce", "quince", "dieciseis", "diecisiete",
    "eins", "zwei", "drei", "vier", "funf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwolf", "dreizehn",
    "vierzehn", "funfzehn", "sechzehn", "siebzehn",
    "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove", "dieci", "undici", "dodici", "tredici",
    "quattordici", "quindici", "sedici", "diciassette",
)
YEARS_INTL = ("anos", "ano", "jahre", "jahren", "jahrig", "jahrige", "jahriger", "jahriges", "jahrigen", "anni",
              "anno", "enne")

# ---------------------------------------------------------------------------------------
# Violence against children: a violent word anywhere with a minor term, a near word next to one.
VIOLENT_WORDS = frozenset((
    "gore", "gory", "gruesome", "mutilated", "mutilation", "dismembered", "dismemberment", "decapitated",
    "beheaded", "disembowelled", "disemboweled", "eviscerated", "corpse", "corpses", "tortured", "torture",
    "torturing", "battered", "bludgeoned", "strangled", "strangling", "stabbed", "stabbing", "murdered",
    "murdering", "slaughtered", "massacred", "massacre", "lynched", "maimed", "impaled", "bloodied",
    "bloodsoaked", "abused", "abusing", "executed", "execution", "executions", "severed", "fusille", "fusilles",
    "fusillee", "fusillees", "execute", "executee", "executes", "beaten", "whipped", "flogged", "scalded",
    "burnt", "charred",
    "mutile", "mutilee", "mutiles", "mutilees", "demembre", "demembree", "decapite", "decapitee", "eventre",
    "eventree", "cadavre", "cadavres", "torture", "torturee", "tortures", "torturees", "etrangle", "etranglee",
    "poignarde", "poignardee", "assassine", "assassinee", "massacre", "massacree", "battu", "battue", "maltraite",
    "maltraitee", "maltraitance", "ensanglante", "ensanglantee", "sanglant", "sanglante", "brule", "brulee",
    "mutilado", "mutilada", "torturado", "torturada", "cadaver", "asesinado", "asesinada", "ensangrentado",
    "ensangrentada", "golpeado", "golpeada", "maltratado", "maltratada",
    "verstummelt", "verstummelte", "gefoltert", "gefolterte", "leiche", "ermordet", "ermordete", "blutuberstromt",
    "blutverschmiert", "misshandelt", "misshandelte", "erstochen", "erwurgt", "verprugelt",
    "mutilato", "mutilata", "torturato", "torturata", "cadavere", "assassinato", "assassinata", "insanguinato",
    "insanguinata", "picchiato", "picchiata", "maltrattato", "maltrattata", "sgozzato", "sgozzata",
))
VIOLENT_PHRASES = (
    "covered in blood", "covered with blood", "soaked in blood", "pool of blood", "blood everywhere",
    "beaten to death", "beaten up", "being beaten", "being hit", "being punched", "being kicked", "being hurt",
    "being strangled", "being stabbed", "being tortured", "being abused", "being shot", "shot dead", "shot in the head",
    "hit by a car", "run over", "bleeding to death", "bleeding out", "open wounds", "bloody wounds",
    "broken bones", "severed limbs", "dead body", "dead bodies", "body bag", "graphic violence", "gory scene",
    "couvert de sang", "couverte de sang", "couverts de sang", "baignant dans son sang", "flaque de sang",
    "mare de sang", "battu a mort", "battue a mort", "roue de coups", "rouee de coups", "en sang", "plein de sang",
    "pleine de sang", "violence graphique", "se fait frapper", "se faire frapper", "corps sans vie",
    "cubierto de sangre", "cubierta de sangre", "charco de sangre", "voller blut", "blutlache",
    "coperto di sangue", "coperta di sangue", "pozza di sangue",
)
VIOLENT_NEAR_WORDS = frozenset((
    "dead", "blood", "bloody", "bleeding", "killed", "killing", "kill", "shot", "wounded", "injured", "hurt",
    "beating", "punched", "kicked", "slapped", "hanged", "drowned", "drowning", "bruised", "bruises", "wound",
    "wounds", "murder", "violence", "violent", "abuse", "hitting",
    "mort", "morte", "morts", "mortes", "sang", "tue", "tuee", "blesse", "blessee", "frappe", "frappee", "noye",
    "noyee", "violente", "violence", "coups",
    "muerto", "muerta", "sangre", "herido", "herida", "tot", "tote", "toter", "toten", "blut", "blutig",
    "verletzt", "geschlagen", "totes", "tote", "morto", "morta", "sangue", "ferito", "ferita",
))
VIOLENCE_DISTANCE = 2
#: benign compounds taken out before violence is looked for with a minor
VIOLENCE_ALLOW = (
    r"fake blood", r"faux sang", r"sangre falsa", r"kunstblut", r"sangue finto", r"blood (?:orange|oranges|moon|"
    r"drive|donation|donor|test|tests|type|pressure|sugar|bank|cells?|sample)", r"dead (?:sea|end|line|lines|"
    r"leaves|wood|tired|serious|heat|center|centre|calm|pan|ringer|bolt|lift)", r"(?:killed|kill|killing) it",
    r"dead (?:dog|dogs|cat|cats|pet|pets|goldfish|fish|hamster|bird|birds|plant|plants|flowers?|leaves|battery|"
    r"batteries|phone|grandmother|grandfather|grandma|grandpa|granny|mother|father|mum|mom|dad|parents?|"
    r"relatives?|ancestors|poets society|language)", r"murder mystery", r"murder mysteries",
    r"(?:playing|plays|play|played) dead", r"gore ?tex", r"al gore",
    r"(?:contre|prevention de|lutte contre|stop a) la maltraitance",
    r"junge (?:frau|frauen|dame|mann|manner|erwachsene)",
    r"child abuse (?:prevention|awareness|hotline|charity|helpline)",
    r"(?:prevention|awareness|against|stop|end) (?:of )?child abuse", r"hurt feelings", r"mort de rire",
    r"morts? de rire", r"prise de sang", r"don du sang", r"don de sang", r"coup de soleil", r"coups? de coeur",
    r"coup de pouce", r"dead ?pool", r"bloody mary", r"bloody marys", r"blood brothers", r"shot glass(?:es)?",
    r"(?:photo|group|team|action|head|portrait|close up|wide|studio) shots?", r"shots? of", r"tot (?:bin|lot)",
    r"sang froid", r"pur sang", r"sang chaud", r"dead ?ringer", r"day of the dead", r"dia de (?:los )?muertos",
    r"jour des morts", r"toten ?hosen",
)

# ---------------------------------------------------------------------------------------
# Graphic gore (configurable).
GORE_WORDS = frozenset((
    "gore", "gory", "gruesome", "disembowelled", "disemboweled", "disembowelment", "eviscerated",
    "evisceration", "dismembered", "dismemberment", "decapitated", "decapitation", "beheaded", "beheading",
    "mutilated", "mutilation", "entrails", "innards", "flayed", "impaled", "bloodbath", "carnage",
    "gorefest", "guro", "snuff",
    "eviscere", "evisceree", "demembre", "demembree", "demembrement", "decapite", "decapitee", "decapitation",
    "mutile", "mutilee", "mutilation", "tripes", "visceres", "carnage", "empale", "empalee",
    "desmembrado", "decapitado", "visceras", "zerstuckelt", "enthauptet", "eingeweide", "smembrato", "decapitato",
    "budella", "sbudellato",
))
GORE_PHRASES = (
    "splatter horror", "splatter film", "severed head", "severed heads", "severed limb", "severed limbs",
    "severed arm", "severed leg", "exposed organs",
    "exposed brain", "brains splattered", "brain matter", "blood splatter", "blood spatter", "pool of blood",
    "covered in blood", "soaked in blood", "blood soaked", "guts spilling", "spilled guts", "spilling guts",
    "ripped apart", "torn apart body", "torn open", "skinned alive", "burned alive", "cut open", "open wound",
    "gaping wound", "bloody corpse", "mangled body", "mangled bodies", "rotting corpse", "decomposing body",
    "car crash victims", "crushed skull", "slit throat", "throat slit", "blood gushing", "gushing blood",
    "tete coupee", "tete tranchee", "membres arraches", "membres coupes", "bain de sang", "mare de sang",
    "flaque de sang", "couvert de sang", "couverte de sang", "baignant dans son sang", "gorge tranchee",
    "cadavre en decomposition", "corps dechiquete", "corps mutile", "boyaux a l air", "crane fracasse",
    "cervelle eclatee", "brule vif", "brulee vive", "ecorche vif", "plaie beante", "entrailles",
    "charco de sangre", "cabeza cortada", "abgetrennter kopf", "blutlache", "testa mozzata", "pozza di sangue",
)
GORE_ALLOW = (
    r"gore ?tex", r"al gore", r"albert gore", r"gore vidal", r"lesley gore", r"(?:no|without|pas de|sans|aucun) gore",
    r"blood (?:orange|oranges|moon|drive|donation|test|type)", r"fake blood", r"faux sang", r"severed ties",
    r"pool of blood red", r"paint splatter", r"splatter (?:paint|painting|art)", r"tomato splatter",
    r"boucherie (?:charcuterie|artisanale|du village|du quartier|traditionnelle)", r"(?:une|la|ma) boucherie",
    r"tripes a la mode de caen", r"les tripes", r"butcher s? (?:shop|counter|display)",
    r"evisceration? of (?:fish|the fish|poultry)",
)

# ---------------------------------------------------------------------------------------
# Hateful or extremist symbols and propaganda (configurable).
HATE_WORDS = frozenset((
    "swastika", "swastikas", "hakenkreuz", "nazi", "nazis", "neonazi", "neonazis", "nazism", "nazisme", "kkk",
    "1488", "sonnenrad", "totenkopfverbande", "hitlerjugend", "wolfsangel", "isis", "daesh", "daech",
    "jihadist", "jihadiste", "jihadistes", "jihadists", "antisemitic", "antisemite", "antisemitique",
    "supremacist", "supremacists", "supremaciste", "supremacistes", "fasciste", "fascist", "fascists", "hitler",
    "svastica", "esvastica", "nazista", "nazisti", "neonazista", "fascista",
))
HATE_PHRASES = (
    "ku klux klan", "burning cross", "cross burning", "white power", "white supremacy", "white pride",
    "aryan nation", "aryan brotherhood", "master race", "heil hitler", "sieg heil", "nazi salute", "hitler salute",
    "roman salute rally", "third reich", "ss runes", "ss bolts", "ss insignia", "ss uniform", "black sun symbol",
    "happy merchant", "14 words", "14 88", "celtic cross flag", "confederate flag rally", "isis flag",
    "islamic state flag", "jihadist propaganda", "terrorist propaganda", "extremist propaganda", "nazi propaganda",
    "hate propaganda", "racist propaganda", "racist caricature", "antisemitic caricature", "ethnic cleansing",
    "great replacement", "white genocide", "gas the", "lynching", "lynch mob", "race war", "hate symbol",
    "hate symbols", "recruitment poster for isis", "isis recruitment", "beheading video",
    "croix gammee", "croix gammees", "salut nazi", "salut hitlerien", "troisieme reich", "propagande nazie",
    "propagande jihadiste", "propagande terroriste", "propagande haineuse", "drapeau de l etat islamique",
    "drapeau de daech", "drapeau nazi", "caricature antisemite", "caricature raciste", "suprematie blanche",
    "grand remplacement", "race superieure", "croix celtique", "runes ss", "uniforme ss", "symbole haineux",
    "symboles haineux", "purification ethnique", "croix enflammee", "guerre raciale",
    "cruz gamada", "saludo nazi", "propaganda nazi", "propaganda yihadista", "bandera del estado islamico",
    "hitlergruss", "nazi propaganda", "drittes reich", "propaganda nazista", "saluto nazista", "croce uncinata",
    "saluto romano",
)
HATE_ALLOW = (
    r"(?:hindu|buddhist|jain|tibetan|diwali|rangoli|ancient|sanskrit) swastikas?", r"swastikas? (?:in|on) (?:a )?"
    r"(?:hindu|buddhist|jain) (?:temple|shrine|rangoli)", r"svastika hindou", r"swastika hindou", r"svastika",
    r"manji", r"isis (?:goddess|the goddess|statue of the goddess|temple)", r"(?:goddess|deesse|diosa|dea) isis",
    r"(?:no|against|anti|stop|contre|pas de) (?:hate|racism|nazis?|fascism|fascisme|racisme)",
    r"anti ?(?:nazi|fascist|fasciste|racist|raciste)", r"grammar nazi", r"soup nazi",
)

# ---------------------------------------------------------------------------------------
# Self-harm (configurable).
SELF_HARM_WORDS = frozenset((
    "selfharm", "automutilation", "autolesion", "autolesiones", "selbstverletzung", "autolesionismo",
    "thinspiration", "thinspo", "proana", "promia", "bonespo", "meanspo", "scarifier", "scarifie", "scarifiee",
    "scarifications", "suicidal", "suicidaire", "suicidaires", "suicidio", "selbstmord", "suizid",
))
SELF_HARM_PHRASES = (
    "self harm", "self harming", "self injury", "self mutilation", "self inflicted", "cutting herself",
    "cutting himself", "cutting myself", "cuts on her arms", "cuts on his arms", "cuts on her wrists",
    "cuts on his wrists", "slit wrists", "slitting her wrists", "slitting his wrists", "slashed wrists",
    "razor cuts", "bleeding wrists", "hanging herself", "hanging himself", "hanged herself", "hanged himself",
    "noose around her neck", "noose around his neck", "noose around the neck", "jumping off a bridge to die",
    "kill herself", "kill himself", "kill myself", "killing herself", "killing himself", "commit suicide",
    "committing suicide", "suicide attempt", "suicide note", "suicide scene", "suicide by", "overdose on pills",
    "overdosing", "pro ana", "pro mia", "starving herself", "starving himself", "burning herself",
    "se couper les veines", "s ouvrir les veines", "veines ouvertes", "poignets taillades", "se coupe les veines",
    "se pend", "se pendent", "cutting her wrists", "cutting his wrists", "cut her wrists", "cut his wrists",
    "cortandose las venas", "poignets entailles",
    "poignets tailles", "se scarifie", "se scarifier", "se mutiler", "se pendre", "s est pendue", "s est pendu",
    "corde au cou", "se suicider", "se suicide", "tentative de suicide", "lettre de suicide", "se tuer",
    "se jeter d un pont", "mettre fin a ses jours", "met fin a ses jours", "surdose de medicaments",
    "se faire du mal", "se fait du mal", "coupures sur les bras", "coupures aux poignets", "s affamer",
    "cortarse las venas", "pulsos cortados", "sich ritzen", "ritzen am arm", "aufgeschnittene pulsadern",
    "tagliarsi le vene", "polsi tagliati",
)
SELF_HARM_ALLOW = (
    r"suicide (?:prevention|awareness|hotline|helpline|help line|lifeline|crisis line|squad)",
    r"(?:prevention|prevenir|prevention du) (?:du )?suicide", r"prevention du suicide", r"suicide prevention",
    r"(?:self harm|suicide) (?:awareness|prevention|support|recovery|helpline)", r"ligne d ecoute",
    r"numero (?:d urgence|national) (?:de )?prevention", r"(?:kill|killing) time", r"se tuer au travail",
    r"se tuer a la tache", r"suicide (?:blonde|doors|door)",
)

# ---------------------------------------------------------------------------------------
# Real people. Words that say a real, identifiable person is meant (with a sexual term: refused).
KNOWN_PERSON_CUES = (
    "celebrity", "celebrities", "celeb", "celebs", "famous", "famous actress", "famous actor", "famous singer",
    "a real person", "real woman", "real girl", "real life person", "deepfake", "deepfakes", "deep fake",
    "deep fakes", "face swap", "faceswap", "face swapped", "swap her face", "swap his face", "lookalike",
    "look alike", "look alikes", "doppelganger", "pop star", "popstar", "movie star", "film star", "tv star",
    "influencer", "influencers", "youtuber", "tiktoker", "streamer", "twitch streamer", "instagram model",
    "onlyfans leak", "leaked nudes", "leaked photos", "politician", "president", "prime minister", "senator",
    "congresswoman", "congressman", "first lady", "royal family", "news anchor", "newsreader",
    "celebrite", "celebrites", "celebre", "vedette", "star de la tele", "star du cinema", "sosie", "influenceuse",
    "influenceur", "youtubeuse", "presidente", "ministre", "deputee", "depute", "personnalite", "personnalites",
    "femme politique", "homme politique", "presentatrice", "une vraie personne", "vraie femme",
    "famosa", "famoso", "actriz", "cantante", "berühmt", "beruhmt", "beruhmte", "promi", "prominente",
    "schauspielerin", "sangerin", "attrice", "celebrita",
    # a colleague, a neighbour's shop, a photo of someone
    "from accounting", "from hr", "from marketing", "from sales", "from finance", "from payroll", "from it",
    "from the office", "from work", "from my office", "from my work", "at my office", "at work",
    "linkedin", "instagram photo", "instagram pic", "instagram picture", "facebook photo", "facebook picture",
    "profile photo", "profile picture", "profile pic", "dating profile", "her instagram", "his instagram",
    "her facebook", "her tiktok", "based on her photo", "based on his photo", "from her photo", "from this photo",
    "from the photo", "from a photo of", "the uploaded photo", "reference photo", "photo i took", "photo i uploaded",
    "de la compta", "de la comptabilite", "du bureau", "des rh", "du service", "du quartier", "du coin",
    "de l immeuble", "photo de profil", "sa photo linkedin", "son instagram", "sa photo instagram",
    "sa photo facebook", "d apres sa photo", "a partir de sa photo", "a partir de cette photo",
)
#: a name right after these is an artist or a brand ("in the style of Amedeo Modigliani"), not the subject
AUTHOR_BEFORE = ("by", "after", "style of", "manner of", "inspired by", "school of", "painted by", "sculpted by",
                 "photographed by", "par", "facon", "maniere de", "style de", "d apres", "inspire de",
                 "signe", "from the studio of", "atelier de")
#: a name right before these is an artist's ("Lucian Freud style nude", "Gustav Klimt's painting")
AUTHOR_AFTER = ("style", "inspired", "painting", "paintings", "sculpture", "sculptures", "s painting",
                "s paintings", "s sculpture", "s statue", "s nude", "s nudes", "s venus", "s david", "s work",
                "s art", "s style", "s masterpiece", "s portrait", "s fresco", "s photograph", "s photographs",
                "museum", "gallery", "exhibition", "retrospective", "collection", "foundation", "lipstick",
                "cosmetics", "beauty")
#: second words of a capitalised pair that make it a place or a thing, not a person
NOT_SURNAMES = frozenset((
    "beach", "park", "street", "avenue", "road", "lake", "river", "museum", "gallery", "island", "islands",
    "city", "bay", "hotel", "square", "bridge", "tower", "garden", "gardens", "palace", "castle", "church",
    "cathedral", "valley", "mountain", "mountains", "hills", "falls", "coast", "station", "airport", "center",
    "centre", "school", "university", "college", "hospital", "studio", "studios", "records", "festival",
    "collection", "edition", "style", "day", "night", "morning", "evening", "light", "hour", "week", "art",
    "deco", "nouveau", "age", "ages", "renaissance", "baroque", "gothic", "classic", "series", "company", "inc",
    "ltd", "co", "plage", "rue", "musee", "parc", "lac", "ile", "ville", "chateau", "eglise", "gare", "jardin",
))
#: capitalised words that begin a phrase more often than a name (never a first name)
NOT_FIRST_NAMES = frozenset((
    "the", "a", "an", "and", "or", "with", "in", "on", "of", "for", "at", "by", "to", "from", "une", "un",
    "la", "le", "les", "des", "de", "du", "et", "avec", "dans", "sur", "pour", "el", "los", "las", "der", "die",
    "das", "il", "lo", "gli", "photo", "portrait", "picture", "image", "close", "new", "old", "saint", "st",
    "san", "santa", "mount", "lake", "cape", "north", "south", "east", "west", "central", "great", "grand",
    "royal", "golden", "silver", "black", "white", "red", "blue", "green", "art", "studio", "museum", "classical",
    "ancient", "greek", "roman", "renaissance", "baroque", "modern", "vintage", "retro", "nude", "naked", "sexy",
    "hot", "young", "little", "beautiful", "pretty", "cute", "sunday", "monday", "tuesday", "wednesday",
    "thursday", "friday", "saturday", "january", "february", "march", "april", "may", "june", "july", "august",
    "september", "october", "november", "december", "christmas", "easter", "halloween", "valentine", "mother",
    "father", "happy", "merry", "high", "low", "dark", "light", "soft", "hard", "fine", "fashion", "beauty",
    "product", "shot", "studio", "cinematic", "photorealistic", "realistic", "ultra", "hyper", "masterpiece",
    "best", "quality", "highly", "detailed", "venus", "david", "birth", "statue", "sculpture", "painting",
    # subjects of paintings and statues ("Olympia de Manet", "Leda and the Swan")
    "olympia", "danae", "leda", "susanna", "bathsheba", "eve", "adam", "diana", "psyche", "andromeda", "galatea",
    "aphrodite", "odalisque", "maja", "flora", "europa", "judith", "salome", "ophelia",
))
#: given names: a capitalised "Name Surname" (or "name surname" in lower case) counts as a real person
FIRST_NAMES = frozenset((
    # English
    "olivia", "emma", "amelia", "ava", "sophia", "isabella", "mia", "charlotte", "harper", "evelyn", "abigail",
    "emily", "elizabeth", "sofia", "madison", "avery", "ella", "scarlett", "chloe", "victoria", "aria", "zoe",
    "natalie", "hannah", "addison", "brooklyn", "samantha", "leah", "audrey", "savannah", "claire", "anna",
    "sarah", "jessica", "jennifer", "ashley", "amanda", "stephanie", "nicole", "melissa", "rachel", "rebecca",
    "laura", "megan", "lauren", "kayla", "taylor", "alexis", "kimberly", "michelle", "heather", "amy", "angela",
    "lisa", "karen", "nancy", "betty", "helen", "sandra", "donna", "carol", "sharon", "deborah", "kathleen",
    "julia", "katie", "kate", "katherine", "catherine", "margaret", "maria", "mary", "patricia", "linda",
    "barbara", "susan", "dorothy", "jane", "selena", "ariana", "billie", "miley", "kim", "kylie", "kendall",
    "gigi", "bella", "margot", "jennifer", "scarlet", "natalie", "anne", "alice", "lucy", "jodie", "keira",
    "kristen", "kristin", "millie", "sydney", "zendaya", "dua", "rihanna", "beyonce", "nicki", "cardi", "doja",
    "megan", "hailey", "madonna", "britney", "christina", "paris", "nicki", "greta", "kamala", "hillary",
    "michelle", "melania", "ivanka", "alexandria", "nancy", "giorgia", "ursula", "angela", "marine", "brigitte",
    "james", "john", "robert", "michael", "william", "david", "richard", "joseph", "thomas", "charles",
    "christopher", "daniel", "matthew", "anthony", "donald", "mark", "paul", "steven", "andrew", "kenneth",
    "joshua", "kevin", "brian", "george", "edward", "ronald", "timothy", "jason", "jeffrey", "ryan", "jacob",
    "gary", "nicholas", "eric", "jonathan", "stephen", "larry", "justin", "scott", "brandon", "benjamin",
    "samuel", "gregory", "frank", "alexander", "raymond", "patrick", "jack", "dennis", "jerry", "tyler", "aaron",
    "jose", "adam", "henry", "nathan", "douglas", "zachary", "peter", "kyle", "walter", "ethan", "jeremy",
    "harold", "keith", "christian", "roger", "noah", "gerald", "carl", "terry", "sean", "austin", "arthur",
    "lawrence", "jesse", "dylan", "bryan", "joe", "jordan", "billy", "bruce", "albert", "willie", "gabriel",
    "logan", "alan", "juan", "wayne", "roy", "ralph", "randy", "eugene", "vincent", "russell", "elijah",
    "louis", "bobby", "philip", "johnny", "oliver", "harry", "jake", "liam", "lucas", "mason", "leo", "tom",
    "chris", "emmanuel", "elon", "barack", "joe", "justin", "keanu", "brad", "leonardo", "timothee", "zac",
    # French
    "sophie", "camille", "manon", "lea", "chloe", "ines", "jade", "louise", "lina", "julie", "marie", "nathalie",
    "isabelle", "sylvie", "catherine", "francoise", "valerie", "christine", "sandrine", "stephanie", "celine",
    "aurelie", "emilie", "elodie", "melanie", "caroline", "virginie", "audrey", "pauline", "clemence", "margaux",
    "mathilde", "elise", "agathe", "lucie", "oceane", "amandine", "severine", "veronique", "martine", "monique",
    "nadia", "sarah", "yasmine", "fatima", "amina", "leila", "sonia", "ophelie", "justine", "charlotte",
    "jean", "pierre", "michel", "philippe", "alain", "nicolas", "christophe", "francois", "laurent", "frederic",
    "eric", "olivier", "thierry", "julien", "sebastien", "guillaume", "antoine", "maxime", "hugo", "theo",
    "mathis", "enzo", "clement", "romain", "alexandre", "kevin", "mehdi", "karim", "yann", "benoit", "arnaud",
    "vincent", "jerome", "gilles", "didier", "bernard", "gerard", "jacques", "emmanuel", "edouard",
    # Spanish, Italian, German
    "lucia", "carmen", "josefa", "isabel", "ana", "dolores", "pilar", "teresa", "rosa", "cristina", "marta",
    "elena", "raquel", "paula", "alba", "daniela", "valentina", "martina", "gabriela", "alejandra", "andrea",
    "sara", "irene", "silvia", "beatriz", "penelope", "shakira", "antonio", "manuel", "francisco", "javier",
    "carlos", "miguel", "alejandro", "rafael", "pablo", "sergio", "jorge", "alberto", "diego", "pedro",
    "monica", "giulia", "francesca", "chiara", "federica", "alessia", "giorgia", "elisa", "valeria", "roberta",
    "simona",
    "giuseppe", "giovanni", "luca", "marco", "matteo", "lorenzo", "alessandro", "francesco", "davide",
    "stefano", "silvio", "sophia", "ursula", "petra", "sabine", "claudia", "susanne", "andrea", "stefanie",
    "julia", "katrin", "anja", "nicole", "heike", "birgit", "lena", "leonie", "johanna", "helene", "greta",
    "heidi", "klaus", "jurgen", "stefan", "thomas", "andreas", "markus", "tobias", "lukas", "jonas", "olaf",
    "friedrich", "wolfgang",
))
