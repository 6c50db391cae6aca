"""Interface labels in Swedish and English, looked up by the site's language.

Input: a language code ("sv" or "en"). Output: a dict of label key -> text, the
``t`` of every template. Both languages always have the same keys (a test checks).
"""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "sv": {
        "home": "Hem",
        "categories": "Kategorier",
        "items": "Objekt",
        "similar": "Liknande",
        "map": "Bildrelationer",
        "map_all": "Alla bilder",
        "similarity": "Likhet",
        "exact_copy": "Exakt kopia",
        "previous": "Föregående",
        "next": "Nästa",
        "page": "Sida",
        "page_of": "Sida {page} av {pages}",
        "view_in_archive": "Visa i arkivet",
        "show_on_map": "Visa på kartan",
        "json": "JSON",
        "no_neighbors": "Inga liknande bilder hittades.",
        "id": "Id",
        "title": "Titel",
        "date": "Datum",
        "creator": "Upphovsperson",
        "description": "Beskrivning",
        "category": "Kategori",
        "skip_to_content": "Hoppa till innehållet",
        "map_help": "Dra för att panorera, scrolla eller nyp för att zooma. Tangentbord: piltangenterna panorerar, + och − zoomar, 0 visar allt, N och P stegar mellan bilderna (Home och End till första och sista), Enter öppnar, Esc avmarkerar.",
        "zoom_in": "Zooma in",
        "zoom_out": "Zooma ut",
        "not_found": "Sidan finns inte",
        "not_found_text": "Vi hittade ingen sida på den adressen.",
        "back_home": "Till startsidan",
        "item_count": "{count} objekt",
        "map_noscript": "Kartan kräver JavaScript. Alla bilder finns också i kategorierna.",
        "home_intro": "Bläddra i samlingen och se vilka bilder som liknar varandra.",
        "map_page_title": "Bildrelationer: {scope}",
    },
    "en": {
        "home": "Home",
        "categories": "Categories",
        "items": "Items",
        "similar": "Similar",
        "map": "Image relations",
        "map_all": "All images",
        "similarity": "Similarity",
        "exact_copy": "Exact copy",
        "previous": "Previous",
        "next": "Next",
        "page": "Page",
        "page_of": "Page {page} of {pages}",
        "view_in_archive": "View in the archive",
        "show_on_map": "Show on map",
        "json": "JSON",
        "no_neighbors": "No similar images were found.",
        "id": "Id",
        "title": "Title",
        "date": "Date",
        "creator": "Creator",
        "description": "Description",
        "category": "Category",
        "skip_to_content": "Skip to content",
        "map_help": "Drag to pan, scroll or pinch to zoom. Keyboard: arrow keys pan, + and − zoom, 0 shows everything, N and P step through the images (Home and End to the first and last), Enter opens, Esc clears the selection.",
        "zoom_in": "Zoom in",
        "zoom_out": "Zoom out",
        "not_found": "Page not found",
        "not_found_text": "There is no page at this address.",
        "back_home": "Back to the home page",
        "item_count": "{count} items",
        "map_noscript": "The map needs JavaScript. Every image is also listed in the categories.",
        "home_intro": "Browse the collection and see which pictures look alike.",
        "map_page_title": "Image relations: {scope}",
    },
}


def labels(language: str) -> dict[str, str]:
    return LABELS[language]
