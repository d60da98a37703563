from hypothesis import given
from hypothesis import strategies as st

from emoji_batch.cleaning import _clean_once, clean_text, clean_texts


def test_mentions_become_user() -> None:
    assert clean_text("thanks @Bob_99 and @user!") == "thanks @user and @user!"


def test_mention_pattern_needs_backslash_w() -> None:
    # The notebook's '@w+' only matched literal 'w's; real handles must be replaced.
    assert clean_text("@alice") == "@user"
    assert clean_text("@www") == "@user"


def test_hashtag_keeps_word_drops_sign() -> None:
    assert clean_text("#Christmas morning #tbt") == "christmas morning tbt"


def test_hash_alone_is_kept() -> None:
    assert clean_text("we're # 1") == "we're # 1"


def test_urls_become_a_word() -> None:
    assert clean_text("look https://t.co/AbC123 and www.example.com/x?y=1") == "look url and url"


def test_lowercase_and_whitespace() -> None:
    assert clean_text("  Hello\tWORLD \n again  ") == "hello world again"


def test_variation_selectors_and_zero_width_removed() -> None:
    assert clean_text("love you \ufe0f \ufe0f") == "love you"
    assert clean_text("a\u200db") == "ab"


def test_html_entities_unescaped() -> None:
    assert clean_text("mac &amp; cheese &lt;3") == "mac & cheese <3"


def test_control_characters_become_spaces() -> None:
    assert clean_text("a\x00b\x1bc") == "a b c"


def test_check_in_at_sign_is_kept() -> None:
    assert clean_text("Brunch @ Blue Bottle") == "brunch @ blue bottle"


def test_emoji_are_kept() -> None:
    assert clean_text("so good 😂😂") == "so good 😂😂"


def test_missing_values_become_empty() -> None:
    assert clean_texts(["Hi", None, 3]) == ["hi", "", ""]  # type: ignore[list-item]


@given(st.text())
def test_total_and_idempotent(text: str) -> None:
    once = clean_text(text)
    assert isinstance(once, str)
    assert clean_text(once) == once


@given(st.text(alphabet=st.sampled_from(list("&amp;#@lt;gt ABCabc\ufe0f\u200d"))))
def test_idempotent_on_entity_soup(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


TRIGGERS = [
    *"@_.:/ wWhHtTpPsSaZ09\t\n\x1c\x85\u3000\ufe0f\u200b\u212a\u0130é😂",
    "http://",
    "HTTPS://",
    "www.",
    "@user",
]


@given(st.one_of(st.text(), st.lists(st.sampled_from(TRIGGERS)).map("".join)))
def test_output_is_a_fixed_point_of_every_rule(text: str) -> None:
    """Also covers the one-pass shortcut for text without "&" or "#"."""
    once = clean_text(text)
    assert _clean_once(once) == once
