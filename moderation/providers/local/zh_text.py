"""Chinese text as OCR and recognisers write it, made comparable: one character per character.

Whisper (and OCR of a Hong Kong or Taiwan poster) may write traditional characters where
the rules and most keyword lists are simplified (聯繫方式 / 联系方式, 掃碼 / 扫码); a
recogniser may also put spaces between characters (加 微 信) and say phone numbers in
Chinese numerals (一三八…). Every mapping here is one character to one character, so the
text rules' views keep pointing at the characters as they were written.

The traditional -> simplified table is deliberately small: the characters of the built-in
rules plus the common ones of contact, advertising, gambling, drugs, abuse and everyday
speech (a few hundred; OpenCC has thousands). A keyword list is normalised by the same
table, so a site's traditional keyword still matches its traditional transcript; a
character outside the table matches only as written (docs/providers.md "Language").
"""

from __future__ import annotations

import re

_TRADITIONAL = (
    "號聯繫係購買賣費領掃碼維機電話點擊鏈為這個們來時會說對後還與進發關開無從當過動種裡裏"
    "體麼麽兒東國長樣見頭問間題實現學應經讓紅錢贏賭詐騙藥貨幣銀團價優禮獎訊綫線網帳賬戶識別"
    "絡媽嗎賤養腦殘滾殺槍彈黃約販醉搖場莊輸虛擬貸證辦歷曆書務員單億萬塊兩門車馬魚鳥龍愛變驗"
    "質認護報導紙樂師聽聲歡熱請謝讀寫語資視頻錄絲贊讚轉評論區頁載軟數據傳給貼廣屬際鬥鬧亂氣"
    "歲雙葉臉顏飛燈壓戰黨軍衛隊襲嫖淫蕩騷妳誰們徵聘兼職薪獲拿幫鍵驟碼註冊網頁樓層羣藍灣"
)
_SIMPLIFIED = (
    "号联系系购买卖费领扫码维机电话点击链为这个们来时会说对后还与进发关开无从当过动种里里"
    "体么么儿东国长样见头问间题实现学应经让红钱赢赌诈骗药货币银团价优礼奖讯线线网帐账户识别"
    "络妈吗贱养脑残滚杀枪弹黄约贩醉摇场庄输虚拟贷证办历历书务员单亿万块两门车马鱼鸟龙爱变验"
    "质认护报导纸乐师听声欢热请谢读写语资视频录丝赞赞转评论区页载软数据传给贴广属际斗闹乱气"
    "岁双叶脸颜飞灯压战党军卫队袭嫖淫荡骚你谁们征聘兼职薪获拿帮键骤码注册网页楼层群蓝湾"
)
assert len(_TRADITIONAL) == len(_SIMPLIFIED), "the table maps one character to one character"

TO_SIMPLIFIED: dict[str, str] = {
    t: s for t, s in zip(_TRADITIONAL, _SIMPLIFIED, strict=True) if t != s
}

# Chinese numerals as digits; 幺 is how "one" is said in phone numbers. 两 is left out: it
# is "two of" far more often than a digit.
NUMERALS = str.maketrans("零〇一二三四五六七八九幺", "001234567891")
# Only a run long enough to be a number someone reads out, so 一个 / 三八 stay words.
NUMERAL_RUN = re.compile(r"[零〇一二三四五六七八九幺]{7,}")

HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_han(ch: str) -> bool:
    return bool(HAN.fullmatch(ch))


def simplified(ch: str) -> str:
    """The simplified form of one (already NFKC-normalised) character; itself if none."""
    return TO_SIMPLIFIED.get(ch, ch)


def numeral_runs(text: str) -> list[tuple[int, int]]:
    """Spans of Chinese-numeral runs long enough to be a phone number."""
    return [m.span() for m in NUMERAL_RUN.finditer(text)]
