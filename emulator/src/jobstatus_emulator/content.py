"""Deterministic, realistic output content for the emulated services.

Everything here is a pure function of a key (usually the job id) and the emulator's seed, so the
same job always produces the same transcript, summary, SOAP note, Symbl conversation, DeepAffects
result or Wasabi metadata. No wall-clock time is read here except where a caller passes it in.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

# (speaker index, text) lines per scenario. Speakers are numbered from 0.
_MEETING = [
    (0, "Good morning everyone, thanks for joining the weekly launch review."),
    (1, "Morning. I have the latest numbers from the beta program ready to share."),
    (0, "Great, let's start with those and then move on to the release checklist."),
    (1, "We onboarded two hundred and forty new beta users last week, up about twelve percent."),
    (2, "Most of the support tickets were about the export feature timing out on large files."),
    (0, "Do we know whether the timeout happens on the client or on the server side?"),
    (2, "It is on the server side, the batch worker gives up after thirty seconds."),
    (1, "I will raise the worker timeout and add a progress indicator by Friday."),
    (0, "Sounds good. Can someone follow up with the customers who reported it?"),
    (2, "I'll follow up with them tomorrow and send a summary to the support channel."),
    (0, "What is the status of the pricing page redesign?"),
    (1, "Design signed off on Monday, engineering needs about three more days."),
    (2, "Marketing wants the new page live before the March twelfth announcement."),
    (0, "Then let's treat the pricing page as a blocker for the launch date."),
    (1, "Agreed. I will update the release checklist and share it after this call."),
    (0, "Thanks everyone, same time next week."),
]
_CLINIC = [
    (0, "Hi, I'm doctor Patel. What brings you in today?"),
    (1, "I've had a sore throat and a low fever for about four days now."),
    (0, "Any cough, shortness of breath or trouble swallowing?"),
    (1, "A dry cough, mostly at night, and swallowing hurts a little."),
    (0, "Have you taken anything for it so far?"),
    (1, "Just ibuprofen twice a day, it helps with the fever for a few hours."),
    (0, "Your temperature today is thirty eight point one and your throat looks red and swollen."),
    (0, "Your lungs sound clear and there are no swollen lymph nodes in the neck."),
    (1, "Is it strep? My daughter had strep throat last month."),
    (0, "We will run a rapid strep test to rule it out before deciding on antibiotics."),
    (0, "Meanwhile keep drinking fluids, rest, and keep taking ibuprofen as needed."),
    (1, "Okay. Should I stay home from work?"),
    (0, "Yes, stay home until the fever has been gone for twenty four hours."),
    (0, "I will call you tomorrow with the test result, and come back if it gets worse."),
    (1, "Thank you doctor, I appreciate it."),
]
_INTERVIEW = [
    (0, "Welcome to the show. Today we are talking about cloud storage costs."),
    (1, "Thanks for having me. Storage bills surprise a lot of teams this year."),
    (0, "Why do you think that is happening now?"),
    (1, "Egress fees and API request charges add up once data pipelines scale."),
    (0, "What should a small team look at first?"),
    (1, "Start with lifecycle rules and move cold data to a cheaper tier."),
    (1, "Then measure how often your pipelines read the same objects again."),
    (0, "Do you see people moving between providers?"),
    (1, "Yes, mostly to S3 compatible services with flat pricing."),
    (0, "We will put a checklist in the show notes for listeners."),
    (1, "I'll send you the spreadsheet we use for cost estimates after the recording."),
    (0, "Thanks again, and thanks everyone for listening."),
]
SCENARIOS: dict[str, list[tuple[int, str]]] = {
    "meeting": _MEETING,
    "clinic": _CLINIC,
    "interview": _INTERVIEW,
}
_SPEAKER_NAMES = {
    "meeting": ["Alice Moreno", "Ben Okafor", "Chen Wei"],
    "clinic": ["Dr. Priya Patel", "Jordan Lee"],
    "interview": ["Sam Rivera", "Dana Kim"],
}
_TOPICS = {
    "meeting": ["launch review", "beta program", "export timeout", "pricing page", "release checklist"],
    "clinic": ["sore throat", "fever", "strep test", "ibuprofen", "follow-up call"],
    "interview": [
        "storage costs",
        "egress fees",
        "lifecycle rules",
        "S3 compatible storage",
        "cost checklist",
    ],
}
_SUMMARIES = {
    "meeting": (
        "The team held its weekly launch review. Beta sign-ups grew by about twelve percent, and "
        "the main support issue is the export feature timing out on large files because the batch "
        "worker gives up after thirty seconds. The worker timeout will be raised and a progress "
        "indicator added by Friday, and affected customers will be contacted tomorrow. The pricing "
        "page redesign needs three more days of engineering and is now a launch blocker ahead of "
        "the March 12 announcement; the release checklist will be updated and shared."
    ),
    "clinic": (
        "The patient reports four days of sore throat, low fever and a dry night-time cough, "
        "partially relieved by ibuprofen. On examination the temperature is 38.1 C, the pharynx "
        "is red and swollen, lungs are clear and there is no cervical lymphadenopathy. A rapid "
        "strep test was ordered; supportive care continues and the patient stays home until "
        "afebrile for 24 hours. The doctor will call with the result tomorrow."
    ),
    "interview": (
        "The host and guest discussed rising cloud storage costs, driven mostly by egress fees and "
        "request charges as pipelines scale. Recommendations: lifecycle rules to move cold data to "
        "cheaper tiers, and measuring repeated reads. Many teams move to flat-priced S3 compatible "
        "services. A cost checklist and estimate spreadsheet will be shared in the show notes."
    ),
}


def _rng(key: str, seed: int, salt: str = "") -> random.Random:
    return random.Random(f"{seed}:{salt}:{key}")


def scenario_for(key: str, seed: int, preferred: str | None = None) -> str:
    if preferred in SCENARIOS:
        return str(preferred)
    return sorted(SCENARIOS)[_rng(key, seed, "scenario").randrange(len(SCENARIOS))]


def numeric_id(key: str, digits: int = 16) -> str:
    """A stable numeric id (Symbl style) derived from ``key``."""
    n = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return str(10 ** (digits - 1) + n % (9 * 10 ** (digits - 1)))


# -- transcripts ----------------------------------------------------------------------------------
@dataclass
class Word:
    word: str
    start: float
    end: float
    confidence: float
    speaker: int


@dataclass
class Segment:
    speaker: int
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    key: str
    language: str
    scenario: str
    segments: list[Segment]
    speaker_names: list[str]

    @property
    def duration(self) -> float:
        return self.segments[-1].end if self.segments else 0.0

    @property
    def num_speakers(self) -> int:
        return len({s.speaker for s in self.segments})

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


_WORD_RE = re.compile(r"\S+")


def _timed_words(text: str, speaker: int, start: float, rng: random.Random) -> tuple[list[Word], float]:
    t = start
    words: list[Word] = []
    for raw in _WORD_RE.findall(text):
        length = 0.16 + 0.055 * len(raw.strip(".,?!")) + rng.uniform(0.0, 0.08)
        words.append(
            Word(
                word=raw,
                start=round(t, 2),
                end=round(t + length, 2),
                confidence=round(rng.uniform(0.86, 0.995), 3),
                speaker=speaker,
            )
        )
        t += length + rng.uniform(0.03, 0.09)
    return words, t


def make_transcript(
    key: str,
    seed: int = 0,
    *,
    scenario: str | None = None,
    language: str = "en",
    lines: list[tuple[int, str]] | None = None,
) -> Transcript:
    """A transcript with speakers and word timings; ``lines`` overrides the scenario's dialogue."""
    rng = _rng(key, seed, "transcript")
    name = scenario_for(key, seed, scenario)
    if lines is None:
        bank = SCENARIOS[name]
        count = max(6, len(bank) - rng.randrange(0, 4))
        lines = bank[:count]
    segments: list[Segment] = []
    t = round(rng.uniform(0.3, 1.2), 2)
    for speaker, text in lines:
        words, end = _timed_words(text, speaker, t, rng)
        if not words:
            continue
        segments.append(Segment(speaker, words[0].start, words[-1].end, text, words))
        t = end + rng.uniform(0.35, 1.1)
    names = list(_SPEAKER_NAMES.get(name, []))
    while len(names) <= max((s.speaker for s in segments), default=0):
        names.append(f"Speaker {len(names)}")
    return Transcript(key=key, language=language, scenario=name, segments=segments, speaker_names=names)


def _ts(seconds: float, sep: str = ".") -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def transcript_txt(tr: Transcript) -> str:
    return "".join(f"[{_ts(s.start)} --> {_ts(s.end)}] Speaker {s.speaker}: {s.text}\n" for s in tr.segments)


def transcript_vtt(tr: Transcript) -> str:
    parts = ["WEBVTT", ""]
    for i, s in enumerate(tr.segments, 1):
        parts += [str(i), f"{_ts(s.start)} --> {_ts(s.end)}", f"<v Speaker {s.speaker}>{s.text}", ""]
    return "\n".join(parts)


def transcript_srt(tr: Transcript) -> str:
    parts: list[str] = []
    for i, s in enumerate(tr.segments, 1):
        parts += [str(i), f"{_ts(s.start, ',')} --> {_ts(s.end, ',')}", f"Speaker {s.speaker}: {s.text}", ""]
    return "\n".join(parts)


def transcript_json(tr: Transcript, job_id: str | None = None) -> dict[str, Any]:
    return {
        "jobId": job_id or tr.key,
        "language": tr.language,
        "duration": round(tr.duration, 2),
        "numSpeakers": tr.num_speakers,
        "transcript": tr.text,
        "segments": [
            {
                "id": i,
                "speaker": s.speaker,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "words": [
                    {
                        "word": w.word,
                        "start": w.start,
                        "end": w.end,
                        "confidence": w.confidence,
                        "speaker": w.speaker,
                    }
                    for w in s.words
                ],
            }
            for i, s in enumerate(tr.segments)
        ],
    }


def render_transcript(tr: Transcript, fmt: str, job_id: str | None = None) -> bytes:
    if fmt == "txt":
        return transcript_txt(tr).encode()
    if fmt == "vtt":
        return transcript_vtt(tr).encode()
    if fmt == "srt":
        return transcript_srt(tr).encode()
    if fmt == "json":
        return json.dumps(transcript_json(tr, job_id), indent=2).encode()
    raise ValueError(f"unknown transcript format {fmt!r}")


_OUTPUT_BYTES_RE = re.compile(r"emu_output_bytes=([0-9]+)")
MAX_OUTPUT_BYTES = 2 * 1024**3
"""Largest ``emu_output_bytes`` honoured: the emulator keeps Daily-storage outputs in memory."""


def output_bytes_marker(*values: Any) -> int | None:
    """``emu_output_bytes=<n>`` in any string inside ``values`` (e.g. a job's submitted request).

    It makes a job's text transcript exactly ``n`` bytes long (see :func:`pad_to`), so that
    tests can move a large output; capped at :data:`MAX_OUTPUT_BYTES`.
    """
    stack = list(values)
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if m := _OUTPUT_BYTES_RE.search(item):
                return min(int(m.group(1)), MAX_OUTPUT_BYTES)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def pad_to(body: bytes, size: int | None) -> bytes:
    """``body`` repeated and cut to exactly ``size`` bytes (unchanged when ``size`` is None or smaller).

    Deterministic, like everything here: the same job always gets the same bytes.
    """
    if size is None or size <= len(body) or not body:
        return body
    return (body * (size // len(body) + 1))[:size]


CONTENT_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "json": "application/json",
}


# -- summaries and SOAP notes ---------------------------------------------------------------------
def summary_text(tr: Transcript) -> str:
    base = _SUMMARIES.get(tr.scenario) or (
        "Summary of the conversation: " + " ".join(s.text for s in tr.segments[:3])
    )
    speakers = ", ".join(f"Speaker {i} ({n})" for i, n in enumerate(tr.speaker_names[: tr.num_speakers]))
    return f"{base}\n\nParticipants: {speakers}.\nDuration: {_ts(tr.duration)}.\n"


def soap_note(tr: Transcript, job_id: str) -> dict[str, Any]:
    rng = _rng(tr.key, 0, "soap")
    return {
        "jobId": job_id,
        "format": "soap",
        "subjective": (
            "Patient reports a sore throat and low-grade fever for four days with a dry cough, "
            "worse at night, and mild odynophagia. Taking ibuprofen twice daily with partial relief. "
            "Sick contact: daughter with strep pharyngitis last month."
        ),
        "objective": (
            f"Temperature 38.{rng.randint(0, 4)} C. Pharynx erythematous and swollen. Lungs clear to "
            "auscultation bilaterally. No cervical lymphadenopathy."
        ),
        "assessment": "Acute pharyngitis, viral versus streptococcal. Rule out group A strep.",
        "plan": [
            "Rapid strep test; antibiotics only if positive.",
            "Fluids, rest, ibuprofen as needed for fever and pain.",
            "Off work until afebrile for 24 hours.",
            "Phone follow-up tomorrow with the result; return if symptoms worsen.",
        ],
        "transcriptDuration": round(tr.duration, 2),
    }


# -- Symbl conversation documents -----------------------------------------------------------------
def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def lines_from_symbl_messages(messages: list[dict[str, Any]]) -> tuple[list[tuple[int, str]], list[str]]:
    """Turn submitted ``/v1/process/text`` messages into (speaker, text) lines and speaker names."""
    names: list[str] = []
    lines: list[tuple[int, str]] = []
    for msg in messages:
        payload = msg.get("payload") or {}
        text = str(payload.get("content", "")).strip()
        if not text:
            continue
        sender = msg.get("from") or {}
        name = str(sender.get("name") or sender.get("userId") or "Speaker")
        if name not in names:
            names.append(name)
        lines.append((names.index(name), text))
    return lines, names


def _kind(text: str) -> str | None:
    low = text.lower()
    if "follow up" in low or "get back" in low or "call you" in low:
        return "follow_up"
    if text.rstrip().endswith("?"):
        return "question"
    if re.search(r"\b(i will|i'll|we will|will raise|will update|will call|will run)\b", low):
        return "action_item"
    return None


class SymblConversation:
    """The Conversation API documents for one conversation, derived from a transcript."""

    def __init__(self, conversation_id: str, tr: Transcript, started: datetime) -> None:
        self.conversation_id = conversation_id
        self.tr = tr
        self.started = started
        self.message_ids = [numeric_id(f"{conversation_id}:m{i}") for i in range(len(tr.segments))]

    def _member(self, speaker: int) -> dict[str, Any]:
        name = (
            self.tr.speaker_names[speaker] if speaker < len(self.tr.speaker_names) else f"Speaker {speaker}"
        )
        user = re.sub(r"[^a-z]+", ".", name.lower()).strip(".")
        return {
            "id": numeric_id(f"{self.conversation_id}:u{speaker}"),
            "name": name,
            "userId": f"{user}@example.com",
        }

    def messages(self, verbose: bool = False) -> dict[str, Any]:
        out = []
        rng = _rng(self.conversation_id, 0, "sentiment")
        for mid, seg in zip(self.message_ids, self.tr.segments, strict=True):
            score = round(rng.uniform(-0.3, 0.8), 3)
            msg: dict[str, Any] = {
                "id": mid,
                "text": seg.text,
                "from": self._member(seg.speaker),
                "startTime": _iso(self.started + timedelta(seconds=seg.start)),
                "endTime": _iso(self.started + timedelta(seconds=seg.end)),
                "timeOffset": round(seg.start, 2),
                "duration": round(seg.end - seg.start, 2),
                "conversationId": self.conversation_id,
                "phrases": [],
                "sentiment": {
                    "polarity": {"score": score},
                    "suggested": "positive" if score > 0.3 else "neutral" if score > -0.3 else "negative",
                },
            }
            if verbose:
                msg["words"] = [
                    {
                        "word": w.word,
                        "startTime": _iso(self.started + timedelta(seconds=w.start)),
                        "endTime": _iso(self.started + timedelta(seconds=w.end)),
                        "timeOffset": w.start,
                        "duration": round(w.end - w.start, 2),
                    }
                    for w in seg.words
                ]
            out.append(msg)
        return {"messages": out}

    def _insights(self, kind: str) -> list[dict[str, Any]]:
        rng = _rng(self.conversation_id, 0, kind)
        items = []
        for mid, seg in zip(self.message_ids, self.tr.segments, strict=True):
            if _kind(seg.text) != kind:
                continue
            item: dict[str, Any] = {
                "id": numeric_id(f"{mid}:{kind}"),
                "text": seg.text,
                "type": kind,
                "score": round(rng.uniform(0.7, 0.99), 3),
                "messageIds": [mid],
                "entities": [],
                "phrases": [],
                "from": self._member(seg.speaker),
                "definitive": kind == "action_item",
            }
            if kind != "question":
                item["assignee"] = self._member(seg.speaker)
            items.append(item)
        return items

    def topics(self) -> dict[str, Any]:
        rng = _rng(self.conversation_id, 0, "topics")
        topics = []
        for text in _TOPICS.get(self.tr.scenario, [])[:4] or [self.tr.segments[0].text.split()[0]]:
            head = text.split()[-1].lower()
            refs = [
                mid
                for mid, s in zip(self.message_ids, self.tr.segments, strict=True)
                if head in s.text.lower()
            ]
            topics.append(
                {
                    "id": numeric_id(f"{self.conversation_id}:t:{text}"),
                    "text": text,
                    "type": "topic",
                    "score": round(rng.uniform(0.5, 0.98), 3),
                    "messageIds": refs[:3] or self.message_ids[:1],
                    "sentiment": {
                        "polarity": {"score": round(rng.uniform(-0.2, 0.7), 3)},
                        "suggested": "neutral",
                    },
                    "parentRefs": [],
                }
            )
        return {"topics": topics}

    def action_items(self) -> dict[str, Any]:
        return {"actionItems": self._insights("action_item")}

    def follow_ups(self) -> dict[str, Any]:
        return {"followUps": self._insights("follow_up")}

    def questions(self) -> dict[str, Any]:
        return {"questions": self._insights("question")}

    def entities(self) -> dict[str, Any]:
        patterns = [
            ("datetime", "date", r"\b(monday|tuesday|wednesday|thursday|friday|tomorrow|march \w+)\b"),
            ("person", "name", r"\b(doctor \w+|dr\. \w+)\b"),
            ("quantity", "number", r"\b(thirty|twenty four|two hundred and forty|three|four)\b"),
        ]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for mid, seg in zip(self.message_ids, self.tr.segments, strict=True):
            for etype, sub, pat in patterns:
                for m in re.finditer(pat, seg.text, flags=re.I):
                    value = m.group(0).lower()
                    ent = found.setdefault(
                        (etype, value),
                        {
                            "type": etype,
                            "subType": sub,
                            "category": "Default",
                            "value": value,
                            "messageRefs": [],
                        },
                    )
                    ent["messageRefs"].append(
                        {
                            "id": mid,
                            "startTime": _iso(self.started + timedelta(seconds=seg.start)),
                            "endTime": _iso(self.started + timedelta(seconds=seg.end)),
                            "text": m.group(0),
                            "offset": m.start(),
                        }
                    )
        return {"entities": list(found.values())}

    def analytics(self) -> dict[str, Any]:
        total = max(self.tr.duration, 0.01)
        talk: dict[int, float] = {}
        words: dict[int, int] = {}
        for seg in self.tr.segments:
            talk[seg.speaker] = talk.get(seg.speaker, 0.0) + (seg.end - seg.start)
            words[seg.speaker] = words.get(seg.speaker, 0) + len(seg.words)
        talk_total = sum(talk.values())
        silence = max(total - talk_total, 0.0)
        members = []
        for spk in sorted(talk):
            member = self._member(spk)
            secs = talk[spk]
            members.append(
                {
                    **member,
                    "pace": {"wpm": int(words[spk] / max(secs, 0.01) * 60)},
                    "talkTime": {"percentage": round(100 * secs / total, 2), "seconds": round(secs, 2)},
                    "listeningTime": {
                        "percentage": round(100 * (total - secs) / total, 2),
                        "seconds": round(total - secs, 2),
                    },
                    "overlap": {},
                }
            )
        return {
            "metrics": [
                {
                    "type": "total_silence",
                    "percent": round(100 * silence / total, 2),
                    "seconds": round(silence, 2),
                },
                {
                    "type": "total_talk_time",
                    "percent": round(100 * talk_total / total, 2),
                    "seconds": round(talk_total, 2),
                },
                {"type": "total_overlap", "percent": 0, "seconds": 0},
            ],
            "members": members,
        }

    def summary(self) -> dict[str, Any]:
        text = summary_text(self.tr).split("\n\n")[0]
        sentences = [s.strip() for s in re.split(r"(?<=\.)\s+", text) if s.strip()]
        return {
            "summary": [
                {
                    "id": numeric_id(f"{self.conversation_id}:s{i}"),
                    "text": sentence,
                    "messageRefs": [{"id": mid} for mid in self.message_ids[i * 2 : i * 2 + 2]],
                }
                for i, sentence in enumerate(sentences)
            ]
        }

    def document(self, name: str, verbose: bool = False) -> dict[str, Any]:
        if name == "messages":
            return self.messages(verbose)
        return {
            "topics": self.topics,
            "action-items": self.action_items,
            "follow-ups": self.follow_ups,
            "questions": self.questions,
            "entities": self.entities,
            "analytics": self.analytics,
            "summary": self.summary,
        }[name]()


SYMBL_DOCUMENTS = (
    "messages",
    "topics",
    "action-items",
    "follow-ups",
    "questions",
    "entities",
    "analytics",
    "summary",
)


# -- DeepAffects ----------------------------------------------------------------------------------
def deepaffects_asr(tr: Transcript, punctuation: bool = True, diarization: bool = True) -> dict[str, Any]:
    def clean(word: str) -> str:
        return word if punctuation else word.strip(".,?!").lower()

    words = []
    for w in tr.words:
        item: dict[str, Any] = {
            "confidence": w.confidence,
            "end": w.end,
            "start": w.start,
            "word": clean(w.word),
        }
        if diarization:
            item["speaker_id"] = str(w.speaker + 1)
        words.append(item)
    conf = round(sum(w.confidence for w in tr.words) / max(len(tr.words), 1), 3)
    text = " ".join(clean(w.word) for w in tr.words)
    return {"num_speakers": tr.num_speakers, "transcript": text, "confidence": conf, "words": words}


def deepaffects_diarize(tr: Transcript) -> dict[str, Any]:
    segments: list[dict[str, Any]] = []
    for seg in tr.segments:
        sid = str(seg.speaker + 1)
        if segments and segments[-1]["speaker_id"] == sid:
            segments[-1]["end"] = seg.end
        else:
            segments.append({"speaker_id": sid, "start": seg.start, "end": seg.end})
    return {"num_speakers": tr.num_speakers, "segments": segments}


# -- Wasabi AiR metadata --------------------------------------------------------------------------
def _threshold(config: Any, default: float) -> float:
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict):
            try:
                return float(inner.get("rec_confidence_threshold", default))
            except (TypeError, ValueError):
                return default
    return default


def wasabi_results(services: dict[str, Any], tr: Transcript, key: str, seed: int) -> dict[str, Any]:
    rng = _rng(key, seed, "wasabi")
    out: dict[str, Any] = {}
    for name, config in services.items():
        if name == "s2t":
            out["s2t"] = {
                "Status": "completed",
                "Language": tr.language,
                "Transcript": tr.text,
                "Segments": [
                    {"Start": s.start, "End": s.end, "Speaker": f"spk_{s.speaker}", "Text": s.text}
                    for s in tr.segments
                ],
            }
        elif name == "ocr":
            texts = ["LAUNCH REVIEW", "Q3 ROADMAP", "www.example.com", "Pricing v2", "Agenda"]
            out["ocr"] = {
                "Status": "completed",
                "Results": [
                    {
                        "Text": texts[i % len(texts)],
                        "Timestamp": round(i * 7.5 + rng.uniform(0, 2), 2),
                        "Confidence": round(rng.uniform(0.8, 0.99), 3),
                        "BoundingBox": {
                            "Left": round(rng.uniform(0, 0.5), 3),
                            "Top": round(rng.uniform(0, 0.5), 3),
                            "Width": round(rng.uniform(0.1, 0.4), 3),
                            "Height": round(rng.uniform(0.05, 0.15), 3),
                        },
                    }
                    for i in range(3 + rng.randrange(3))
                ],
            }
        elif name == "nld":
            out["nld"] = {
                "Status": "completed",
                "Keywords": _TOPICS.get(tr.scenario, [])[:5],
                "Summary": summary_text(tr).split("\n\n")[0],
                "Sentiment": {"Label": "positive", "Score": round(rng.uniform(0.5, 0.9), 3)},
            }
        elif name == "audiotag":
            labels = ["speech", "music", "applause", "keyboard typing", "silence"]
            out["audiotag"] = {
                "Status": "completed",
                "Tags": [
                    {
                        "Label": labels[i % len(labels)],
                        "Start": round(i * 5.0, 2),
                        "End": round(i * 5.0 + rng.uniform(1, 5), 2),
                        "Confidence": round(rng.uniform(0.6, 0.99), 3),
                    }
                    for i in range(4)
                ],
            }
        elif name == "face":
            out["face"] = {
                "Status": "completed",
                "Faces": [
                    {
                        "FaceId": f"face_{i}",
                        "Name": (tr.speaker_names + ["Unknown"])[i]
                        if i < len(tr.speaker_names)
                        else "Unknown",
                        "FirstSeen": round(rng.uniform(0, 3), 2),
                        "LastSeen": round(tr.duration - rng.uniform(0, 3), 2),
                        "Appearances": rng.randint(2, 12),
                        "Confidence": round(rng.uniform(0.8, 0.99), 3),
                    }
                    for i in range(tr.num_speakers)
                ],
            }
        elif name == "logo":
            threshold = _threshold(config, 0.5)
            logos: list[dict[str, Any]] = [
                {
                    "Label": label,
                    "Timestamp": round(rng.uniform(0, max(tr.duration, 1)), 2),
                    "Confidence": round(rng.uniform(0.55, 0.99), 3),
                }
                for label in ("Wasabi", "Acme Corp", "Example Inc")
            ]
            out["logo"] = {
                "Status": "completed",
                "Threshold": threshold,
                "Logos": [lg for lg in logos if lg["Confidence"] >= threshold],
            }
    return out
