"""A newsletter's brand checked in one place: contrast measured and named, https logos,
real addresses, fonts from the list, language tags; dark mode lightened to pass."""

from __future__ import annotations

import pytest

from digest.mail.brand import (
    DARK_BACKGROUND,
    DEFAULT_BRAND,
    FONTS,
    HEADLINE_DARK_RATIO,
    LIGHT_BACKGROUND,
    MIN_CONTRAST_RATIO,
    Brand,
    BrandError,
    check_brand,
    contrast_ratio,
    lighten_to_pass,
)


def refused(**changes: object) -> dict[str, str]:
    with pytest.raises(BrandError) as caught:
        check_brand(changes)
    return caught.value.fields


def test_contrast_is_wcag_relative_luminance() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the famous near miss
    assert contrast_ratio("#fff", "#000") == contrast_ratio("#000000", "#ffffff")


def test_a_colour_that_fails_four_and_a_half_to_one_is_refused_with_its_ratio() -> None:
    assert refused(accent_color="#ffcc00") == {"accent_color": "accent_color #ffcc00 is 1.5:1 on white; needs 4.5:1"}
    assert refused(link_color="#777") == {"link_color": "link_color #777777 is 4.4:1 on white; needs 4.5:1"}
    assert check_brand({"accent_color": "#767676"}).accent_color == "#767676"  # 4.54:1 passes
    assert check_brand({"link_color": "#0B5394"}).link_color == "#0b5394"


@pytest.mark.parametrize("value", ["red", "#12345", "#gggggg", "0b5394", "", None])
def test_a_colour_is_hex_or_the_default(value: object) -> None:
    if value in ("", None):
        assert check_brand({"accent_color": value}).accent_color is None
    else:
        assert refused(accent_color=value) == {"accent_color": "accent_color must be a colour like #a3241b"}


def test_every_bad_field_is_named_at_once() -> None:
    fields = refused(logo_url="http://cdn.example/logo.png", logo_width=9000, font="Comic Sans",
                     reply_to="not an address", language="english!", footer_text="x" * 501, colour="#000")

    assert set(fields) == {"logo_url", "logo_width", "font", "reply_to", "language", "footer_text", "colour"}
    assert "https" in fields["logo_url"]
    assert "16 to 536" in fields["logo_width"]
    assert "georgia" in fields["font"]


def test_good_values_are_normalised() -> None:
    brand = check_brand({"logo_url": " https://cdn.example/logo.png ", "logo_width": "180", "font": "Verdana",
                         "reply_to": " Desk@News.Example.com ", "language": "FR-CA",
                         "footer_text": "  Political IQ\n is reader-funded.  "})

    assert brand == Brand(logo_url="https://cdn.example/logo.png", logo_width=180, font="verdana",
                          reply_to="Desk@news.example.com", language="fr-CA",
                          footer_text="Political IQ is reader-funded.")


def test_a_change_keeps_the_rest_and_empty_means_the_default() -> None:
    current = check_brand({"accent_color": "#0b5394", "font": "arial"})

    changed = check_brand({"font": ""}, current)
    assert (changed.accent_color, changed.font) == ("#0b5394", None)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://", "https://cdn.example/a b.png",
                                 'https://cdn.example/a".png', "data:image/png;base64,AAAA"])
def test_a_logo_is_one_https_address(url: str) -> None:
    assert "logo_url" in refused(logo_url=url)


@pytest.mark.parametrize(("language", "direction"), [("en", "ltr"), ("ar", "rtl"), ("he-IL", "rtl"),
                                                     ("fa", "rtl"), ("uk", "ltr"), ("ur-PK", "rtl")])
def test_direction_follows_the_language(language: str, direction: str) -> None:
    style = check_brand({"language": language}).style()
    assert (style.language, style.dir) == (language, direction)


def test_the_default_style_is_the_house_look() -> None:
    style = DEFAULT_BRAND.style()

    assert (style.accent, style.link, style.language, style.dir) == ("#a3241b", "#1a1a1a", "en", "ltr")
    assert style.font == FONTS["georgia"] and style.body_font == FONTS["arial"]
    assert check_brand({"font": "system"}).style().body_font == FONTS["system"]  # one font for everything


@pytest.mark.parametrize("colour", ["#a3241b", "#1a1a1a", "#000000", "#0b5394", "#767676", "#5b2a86"])
def test_dark_mode_colours_pass_on_the_dark_page_and_keep_passing_on_light(colour: str) -> None:
    style = check_brand({"accent_color": colour, "link_color": colour}).style()

    assert contrast_ratio(style.accent_dark, DARK_BACKGROUND) >= MIN_CONTRAST_RATIO
    assert contrast_ratio(style.link_dark, DARK_BACKGROUND) >= HEADLINE_DARK_RATIO
    assert contrast_ratio(style.accent, LIGHT_BACKGROUND) >= MIN_CONTRAST_RATIO
    # The button's text is the dark page's colour on the dark accent.
    assert contrast_ratio(style.page_dark, style.accent_dark) >= MIN_CONTRAST_RATIO


def test_lightening_is_as_little_as_needed() -> None:
    assert lighten_to_pass("#ffffff") == "#ffffff"
    lighter = lighten_to_pass("#a3241b")
    assert contrast_ratio(lighter, DARK_BACKGROUND) >= MIN_CONTRAST_RATIO
    assert contrast_ratio(lighter, DARK_BACKGROUND) < MIN_CONTRAST_RATIO + 1  # not simply white
