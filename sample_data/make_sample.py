"""Generate a small, synthetic tweet sample for trying out emoji-batch.

Why this exists: the CLI needs realistic-looking input to exercise its CSV and
Parquet readers, text cleaning and batching, but real tweet datasets cannot be
committed here. This script writes hand-written, tweet-like English text built
deterministically from small phrase lists (openers x topics x endings, seeded
with ``random.Random(7)``), plus a handful of deliberately messy rows (empty,
whitespace-only, URL-only, mentions-only, emoji-only, very long, non-English,
embedded newline/quote/comma, U+FE0F variation selectors).

Nothing is read from disk or the network. Running it again produces identical
``tweets.csv`` and ``tweets.parquet`` files next to this script.

Usage:
    python sample_data/make_sample.py
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

SEED = 7
N_REGULAR = 290
OUT_DIR = Path(__file__).resolve().parent
START = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
LONG_TEXT_CHARS = 3000

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("created_at", pa.string(), nullable=False),
    ]
)

OPENERS: list[str] = [
    "",
    "Honestly",
    "Not gonna lie,",
    "Can't believe",
    "Just realized",
    "Reminder:",
    "Okay so",
    "Low key",
    "Finally!",
    "Throwback to when",
    "Me right now:",
    "Nothing beats",
]

# topic -> (phrases, hashtags)
TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "love": (
        [
            "I love my family so much",
            "date night with my favorite person",
            "so grateful for my mom and dad",
            "my little sister is the sweetest human",
            "falling in love with this city all over again",
        ],
        ["#love", "#family", "#blessed"],
    ),
    "laugh": (
        [
            "I laughed so hard I cried",
            "this meme has me dying",
            "my roommate just told the worst joke ever",
            "can't stop laughing at this video",
            "my dog fell off the couch and looked so offended",
        ],
        ["#lol", "#funny", "#dead"],
    ),
    "christmas": (
        [
            "the tree is finally up and it looks amazing",
            "Christmas lights all over the neighborhood",
            "wrapping presents with hot cocoa",
            "ugly sweater party tonight",
            "counting down the days until Christmas",
        ],
        ["#christmas", "#holidays", "#merrychristmas"],
    ),
    "summer": (
        [
            "beach day with the crew",
            "sun is out and so am I",
            "sunset at the pier was unreal",
            "pool party all afternoon",
            "summer vibes and salty hair",
        ],
        ["#summer", "#beach", "#sunset"],
    ),
    "food": (
        [
            "best tacos I have ever had",
            "pancakes and bacon for breakfast",
            "homemade pizza night",
            "this ramen is changing my life",
            "mac and cheese with extra cheese",
        ],
        ["#foodie", "#yum", "#brunch"],
    ),
    "sports": (
        [
            "what a game tonight",
            "we won the championship",
            "leg day almost killed me",
            "first 10k done",
            "that last-second buzzer beater",
        ],
        ["#gameday", "#fitness", "#GoTeam"],
    ),
    "music": (
        [
            "this new album is on repeat",
            "front row at the concert",
            "cannot get this song out of my head",
            "karaoke night went off the rails",
            "road trip playlist is ready",
        ],
        ["#music", "#concert", "#nowplaying"],
    ),
    "birthday": (
        [
            "happy birthday to my best friend",
            "birthday cake and candles",
            "another trip around the sun",
            "surprise party was a total success",
            "happy birthday mom, love you",
        ],
        ["#birthday", "#hbd", "#party"],
    ),
    "sad": (
        [
            "worst day ever",
            "miss you so much it hurts",
            "my flight got cancelled again",
            "so tired of this rain",
            "the season finale broke my heart",
        ],
        ["#sad", "#mondays", "#ugh"],
    ),
    "hype": (
        [
            "this track is straight fire",
            "that outfit is fire",
            "new sneakers just dropped",
            "the energy in here is insane",
            "we are so back",
        ],
        ["#lit", "#fire", "#hype"],
    ),
    "usa": (
        [
            "happy 4th of July everyone",
            "fireworks over the lake tonight",
            "red white and blue all day",
            "proud to be an American",
            "Independence Day BBQ with the neighbors",
        ],
        ["#july4th", "#usa", "#merica"],
    ),
    "friends": (
        [
            "squad goals",
            "girls night out",
            "my friends are the best",
            "reunited with the college crew",
            "game night with the gang",
        ],
        ["#friends", "#squad", "#bff"],
    ),
    "photo": (
        [
            "new photo from today's shoot",
            "golden hour portraits",
            "caught this shot on my walk",
            "film camera is back",
            "picture perfect afternoon",
        ],
        ["#photography", "#tbt", "#photooftheday"],
    ),
    "sparkles": (
        [
            "new nails, who dis",
            "feeling myself today",
            "fresh haircut, feeling cute",
            "glowing skin finally",
            "everything is sparkly and I love it",
        ],
        ["#beauty", "#glam", "#selfcare"],
    ),
}

ENDINGS: list[str] = ["", "!", "!!", "!!!", ".", "...", " lol", " haha", " omg", " tbh"]

HANDLES: list[str] = ["@user", "@user", "@user", "@jess_k", "@mike_runs", "@foodie_ana"]

PLACES: list[str] = [
    "Blue Bottle Coffee",
    "Venice Beach",
    "Madison Square Garden",
    "Central Park",
    "Pike Place Market",
    "The Old Pier",
    "Grandma's House",
]

CHECKIN_STEMS: list[str] = [
    "Sunday brunch",
    "Late night snacks",
    "Family dinner",
    "Game night",
    "Sunset walk",
    "Coffee break",
]

# Positions (0-based in the final table) where the messy rows are inserted.
MESSY_POSITIONS: list[int] = [11, 40, 76, 102, 137, 165, 198, 230, 261, 286]


def short_url(rng: random.Random) -> str:
    """Return a fake t.co short link."""
    alphabet = string.ascii_letters + string.digits
    return "https://t.co/" + "".join(rng.choice(alphabet) for _ in range(10))


def regular_text(rng: random.Random) -> str:
    """Compose one tweet-like text from the phrase lists."""
    topic = rng.choice(sorted(TOPICS))
    phrases, tags = TOPICS[topic]
    phrase = rng.choice(phrases)

    if rng.random() < 0.08:
        text = f"{rng.choice(CHECKIN_STEMS)} @ {rng.choice(PLACES)}"
    else:
        opener = rng.choice(OPENERS)
        text = f"{opener} {phrase}".strip() if opener else phrase.capitalize()
        text += rng.choice(ENDINGS)

    if rng.random() < 0.12:
        extra = rng.choice(sorted(t for t in TOPICS if t != topic))
        text += f" &amp; {rng.choice(TOPICS[extra][0])}"
    if rng.random() < 0.25:
        text = f"{rng.choice(HANDLES)} {text}"
    if rng.random() < 0.35:
        text += " " + " ".join(rng.sample(tags, rng.randint(1, 2)))
    if rng.random() < 0.10:
        text += " #tbt"
    if rng.random() < 0.15:
        text += " " + short_url(rng)
    if rng.random() < 0.07:
        text += " " * rng.randint(1, 3)
    return text


def long_text() -> str:
    """Return a rambling ~3,000 character tweet-thread-style text."""
    parts: list[str] = []
    for topic in sorted(TOPICS):
        parts.extend(TOPICS[topic][0])
    sentences = [p.capitalize() + "." for p in parts]
    text = ""
    i = 0
    while len(text) < LONG_TEXT_CHARS:
        text += sentences[i % len(sentences)] + " "
        i += 1
    return text[: LONG_TEXT_CHARS - 1].rstrip() + "!"


def messy_rows() -> list[tuple[str, str]]:
    """Return (text, lang) pairs for the deliberately awkward rows."""
    return [
        ("", "und"),
        ("   ", "und"),
        ("https://t.co/Zx9Qp2Lm4K", "und"),
        ("@user @user", "und"),
        ("\U0001f602\U0001f602\U0001f602", "und"),
        (long_text(), "en"),
        ("Qué día tan bonito en la playa con mi familia, te quiero mamá", "es"),
        ("Joyeux anniversaire ma belle, passe une excellente journée !", "fr"),
        ('Line one of my "hot take", honestly\nline two: pizza > tacos', "en"),
        ("love you \ufe0f \ufe0f", "en"),
    ]


def build_table() -> pa.Table:
    """Build the full sample as a pyarrow Table."""
    rng = random.Random(SEED)
    rows: list[tuple[str, str]] = [(regular_text(rng), "en") for _ in range(N_REGULAR)]
    for pos, row in zip(MESSY_POSITIONS, messy_rows(), strict=True):
        rows.insert(pos, row)

    created: list[str] = []
    ts = START
    for _ in rows:
        created.append(ts.strftime("%Y-%m-%dT%H:%M:%SZ"))
        ts += timedelta(minutes=rng.randint(7, 240))

    return pa.table(
        {
            "id": list(range(1, len(rows) + 1)),
            "text": [text for text, _ in rows],
            "lang": [lang for _, lang in rows],
            "created_at": created,
        },
        schema=SCHEMA,
    )


def main() -> None:
    """Write tweets.csv and tweets.parquet next to this script."""
    table = build_table()
    pa_csv.write_csv(table, OUT_DIR / "tweets.csv")
    pq.write_table(table, OUT_DIR / "tweets.parquet")
    print(table.num_rows)


if __name__ == "__main__":
    main()
