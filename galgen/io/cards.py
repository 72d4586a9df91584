"""FITS header cards as plain ``(keyword, value, comment)`` tuples, each formatted once.

galgen builds every header it writes as `Cards`: an ordered list that places a new card where
an astropy Header would (after the last keyword card, before trailing HISTORY and COMMENT),
so one builder serves both FITS writers of `galgen.io.write`. `card_image` formats a card
as astropy does (80-character images, CONTINUE cards for long strings), verified, and keeps
the result: a run's mocks share most of their cards, so each file formats only the few that
change (its index, its HISTORY line). A card copied from an astropy header (`copied`: an
input's, wcslib's) keeps its own image, as astropy keeps it, until its value is set.
"""

from __future__ import annotations

import functools
import warnings
from typing import Iterable, Iterator

COMMENTARY = ("", "COMMENT", "HISTORY")
Card = tuple  # (keyword, value, comment) or (keyword, value, comment, image): comment "" for none


class Cards:
    """An ordered FITS header of ``(keyword, value, comment)`` cards.

    The few Header methods galgen's builders use (``in``, ``get``, ``[]``, ``set``,
    ``add_history``, ``add_comment``) behave as astropy's, so `galgen.io.provenance` fills
    either. Keywords are upper case; a commentary card (HISTORY, COMMENT, blank) may repeat.
    """

    def __init__(self, cards: Iterable[Card] = ()):
        self.cards: list[Card] = []
        self._count: dict[str, int] = {}  # cards per keyword: `in` without a scan
        for card in cards:
            self.append(*card, end=True)

    def __len__(self) -> int:
        return len(self.cards)

    def __iter__(self) -> Iterator[Card]:
        return iter(self.cards)

    def __contains__(self, keyword: str) -> bool:
        return self._count.get(keyword.upper(), 0) > 0

    def index(self, keyword: str) -> int:
        """Position of the first card named ``keyword`` (ValueError when there is none)."""
        keyword = keyword.upper()
        for i, card in enumerate(self.cards):
            if card[0] == keyword:
                return i
        raise ValueError(f"no card {keyword!r}")

    def get(self, keyword: str, default=None):
        """The value of the first card named ``keyword``, or ``default``."""
        try:
            return self[keyword]
        except KeyError:
            return default

    def __getitem__(self, keyword: str):
        try:
            return self.cards[self.index(keyword)][1]
        except ValueError:
            raise KeyError(keyword) from None

    def __setitem__(self, keyword: str, value) -> None:
        """``cards[k] = value`` or ``(value, comment)``: replace the first card ``k``, else append one."""
        comment = None
        if isinstance(value, tuple):
            value, comment = value
        self.set(keyword, value, comment)

    def set(self, keyword: str, value, comment: str | None = None, *, before: str | None = None,
            after: str | None = None) -> None:
        """Replace the first card ``keyword`` (``comment`` None keeps its comment), or add one.

        A new card goes just before ``before`` or after ``after`` when given (and present),
        else where `append` puts it. Commentary keywords always add a card.
        """
        keyword = keyword.upper()
        anchor = (before if before is not None else after or "").upper()
        offset = 0 if before is not None else 1
        if keyword not in COMMENTARY and keyword in self:
            i = self.index(keyword)
            card = (keyword, value, self.cards[i][2] if comment is None else comment)
            self.cards[i] = card
            if anchor and anchor != keyword and anchor in self:
                del self.cards[i]
                self.cards.insert(self.index(anchor) + offset, card)
            return
        card = (keyword, value, comment or "")
        if not anchor or anchor not in self:
            self.append(*card)
        else:
            self.insert(self.index(anchor) + offset, *card)

    def append(self, keyword: str, value="", comment: str = "", image: str | None = None, *, bottom: bool = False,
               end: bool = False) -> None:
        """Add a card: after the last keyword card; ``bottom``: after the last card but trailing blank ones;
        ``end``: after every card. Blank cards always go at the end. ``image``: the card's own (`copied`)."""
        card = (keyword.upper(), value, comment or "") + ((image,) if image else ())
        self._count[card[0]] = self._count.get(card[0], 0) + 1
        if end or _blank(card):
            self.cards.append(card)
            return
        i = len(self.cards)
        while i > 0 and _blank(self.cards[i - 1]):
            i -= 1
        if not bottom and card[0] not in COMMENTARY:
            while i > 0 and self.cards[i - 1][0] in COMMENTARY:
                i -= 1
        self.cards.insert(i, card)

    def insert(self, index: int, keyword: str, value="", comment: str = "") -> None:
        """Put a card at position ``index``."""
        keyword = keyword.upper()
        self._count[keyword] = self._count.get(keyword, 0) + 1
        self.cards.insert(index, (keyword, value, comment or ""))

    def extend(self, cards: Iterable[Card]) -> None:
        """Add ``cards`` after every card, in their order."""
        for card in cards:
            self.append(*card, end=True)

    def add_history(self, text: str) -> None:
        self.append("HISTORY", text)

    def add_comment(self, text: str) -> None:
        self.append("COMMENT", text)

    def keyword_end(self) -> int:
        """Where astropy adds a new keyword card (CHECKSUM, say): after the last card that is not commentary."""
        i = len(self.cards)
        while i > 0 and _blank(self.cards[i - 1]):
            i -= 1
        while i > 0 and self.cards[i - 1][0] in COMMENTARY:
            i -= 1
        return i

    def images(self) -> list[str]:
        """Each card's image: its own, or as astropy formats it (`card_image`)."""
        return [card[3] if len(card) > 3 else card_image(*card) for card in self.cards]

    def to_header(self):
        """The same cards, in order, as an astropy Header (a copied card from its own image)."""
        from astropy.io import fits

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long strings -> CONTINUE
            return fits.Header([fits.Card.fromstring(card[3]) if len(card) > 3 else fits.Card(*card)
                                for card in self.cards])


def copied(card) -> Card:
    """An astropy Card as a `Cards` entry that keeps its image, verified as astropy's writer verifies it."""
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        card.verify("exception")
    return (card.keyword, card.value, card.comment, card.image)


def _blank(card: Card) -> bool:
    return card[0] == "" and not card[1] and not card[2]


def card_image(keyword: str, value="", comment: str = "") -> str:
    """The card as astropy writes it: 80 characters, or a multiple for a long string (CONTINUE).

    Verified as astropy's writer verifies it (a ValueError-like VerifyError for a card FITS
    cannot hold); remembered, so a card met again costs a dictionary look-up.
    """
    exact = repr(value) if isinstance(value, float) else None  # 0.0 and -0.0 are equal keys, not equal cards
    return _formatted(keyword, value, comment, exact)


@functools.lru_cache(maxsize=4096, typed=True)
def _formatted(keyword: str, value, comment: str, exact: str | None) -> str:
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long strings -> CONTINUE
        card = fits.Card(keyword, value, comment)
        card.verify("exception")
        return card.image
