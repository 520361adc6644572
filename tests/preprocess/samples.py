"""Text samples for measuring decoding and mojibake repair (shared by tests and docs).

Every entry is real-looking text in its language; nothing here encodes an expected
detector output, only the original text that a correct pipeline gives back.
"""

from __future__ import annotations

#: (legacy encoding, sentence): the bytes are ``sentence.encode(encoding)``.
LEGACY_SAMPLES: tuple[tuple[str, str], ...] = (
    ("latin-1", "Café crème, déjà vu: à la française, naïve façade près du théâtre. "
                "Où est le garçon?"),
    ("latin-1", "Grüße aus München! Die Straße ist schön und die Bäume blühen im Frühling."),
    ("latin-1", "El niño comió paella en España; la señora está en la montaña con el "
                "pingüino."),
    ("latin-1", "A informação não está disponível, mas a situação é ótima e o coração "
                "está feliz."),
    ("cp1252", "\u201cSmart quotes\u201d \u2014 and an em dash, it\u2019s the café\u2019s "
               "menu\u2026 really."),
    ("cp1252", "He said \u201cno\u201d \u2013 then left. It\u2019s 5\u20ac for a coffee, "
               "isn\u2019t it?"),
    ("cp1250", "Zażółć gęślą jaźń, to jest polski tekst o żółtym kolorze i źrebięciu na "
               "łące."),
    ("cp1250", "Příliš žluťoučký kůň úpěl ďábelské ódy, řekl Čech v Brně."),
    ("cp1251", "Привет, как дела? Это обычный русский текст в старой кодировке Windows."),
    ("koi8_r", "Съешь же ещё этих мягких французских булок, да выпей чаю."),
    ("cp1253", "Καλημέρα σας, αυτό είναι ένα ελληνικό κείμενο για δοκιμή της "
               "κωδικοποίησης."),
    ("cp1254", "Türkçe metin: şişe, ağaç, çiçek, öğrenci ve güzel İstanbul şehri."),
    ("shift_jis", "これは日本語のテキストです。文字コードはシフトJISです。東京は大きな都市です。"),
    ("euc_jp", "これは日本語のテキストです。文字コードはEUC-JPです。東京は大きな都市です。"),
    ("gb2312", "这是一个中文文本，用于测试字符编码的检测。北京是中国的首都。"),
    ("big5", "這是一個繁體中文文本，用於測試字元編碼的偵測。臺北是一個城市。"),
    ("euc_kr", "이것은 한국어 텍스트입니다. 문자 인코딩 감지를 테스트합니다."),
)

#: Correct text, some of it full of characters that look like mojibake but are not.
CLEAN_SENTENCES: tuple[str, ...] = (
    "The café was nice.",
    "Café crème, déjà vu: à la française.",
    "Grüße aus München, die Straße ist schön.",
    "El niño comió paella en España.",
    "A informação não está disponível.",
    "SÃO PAULO É UMA CIDADE GRANDE.",
    "Zażółć gęślą jaźń.",
    "Привет, как дела?",
    "Καλημέρα σας.",
    "これは日本語のテキストです。",
    "这是一个中文文本。",
    "النص العربي هنا.",
    "He said \u201cno\u201d \u2014 then left; it\u2019s 5\u20ac\u2026",
    "¡Hola! ¿Qué tal? «Très bien», merci.",
    "1 × 2 ≠ 3 ± ε, x² + y³, ½ of 100 °C.",
    "© 2024 Example™ ® — £100 or €80 or ¥500.",
    "Ünïcödé façade naïve coöperate résumé.",
    "Emoji 🙂 👍🏽 👨\u200d👩\u200d👧 ❤️ are fine.",
    "Tab\tand multiple   spaces stay the user's business.",
    "ÃÂ is just two letters in a list: Ã, Â, Ê, Î.",
)


def as_cp1252_mojibake(text: str) -> str:
    """UTF-8 bytes read as Windows-1252 (bytes it lacks read as Latin-1): "cafÃ©"."""
    return "".join(
        bytes([b]).decode("cp1252", errors="strict") if b not in _CP1252_HOLES else chr(b)
        for b in text.encode("utf-8")
    )


def as_latin1_mojibake(text: str) -> str:
    """UTF-8 bytes read as Latin-1 (C1 control characters included)."""
    return text.encode("utf-8").decode("latin-1")


def as_double_mojibake(text: str) -> str:
    """Mojibake of mojibake: the cp1252 misreading applied twice."""
    return as_cp1252_mojibake(as_cp1252_mojibake(text))


_CP1252_HOLES = frozenset((0x81, 0x8D, 0x8F, 0x90, 0x9D))
