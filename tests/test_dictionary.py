"""The T5 dictionary: HF id order, SSR markers inside the sentinel range, files that round-trip."""
import pytest

from fairseq_ssr.data import MAX_SPANS, T5Dictionary
from fairseq_ssr.data.dictionary import NUM_SENTINELS


def test_ids_follow_hugging_face(tokenizer, spm_path, tmp_path):
    import shutil

    from transformers import T5Tokenizer as HFTokenizer

    d = tokenizer.dictionary
    shutil.copy(spm_path, tmp_path / "spiece.model")
    hf = HFTokenizer.from_pretrained(str(tmp_path))
    assert (d.pad(), d.eos(), d.unk()) == (hf.pad_token_id, hf.eos_token_id, hf.unk_token_id)
    assert d.bos() == d.pad()  # the decoder starts from pad
    assert [d.index(f"<extra_id_{n}>") for n in range(100)] == hf.convert_tokens_to_ids(
        [f"<extra_id_{n}>" for n in range(100)])
    assert [d[i] for i in range(d.num_pieces)] == hf.convert_ids_to_tokens(list(range(d.num_pieces)))
    text = "The master of the school was a Tanuki, they said."
    assert tokenizer.encode(text) == hf(text).input_ids


def test_markers_are_sentinels_and_decode_back(tokenizer):
    d = tokenizer.dictionary
    starts = [d.span_start(i) for i in range(1, MAX_SPANS + 1)]
    ends = [d.span_end(i) for i in range(1, MAX_SPANS + 1)]
    assert d[d.span_start(1)] == "<extra_id_0>" and d[d.span_end(1)] == "<extra_id_99>"
    assert len(set(starts + ends)) == 2 * MAX_SPANS == NUM_SENTINELS
    assert all(d.is_sentinel(i) for i in starts + ends)
    for i in (1, 7, MAX_SPANS):
        assert d.marker(d.span_start(i)) == ("start", i) and d.marker(d.span_end(i)) == ("end", i)
        assert d.marker_id(f"<s_{i}>") == d.span_start(i) and d.marker_id(f"</s_{i}>") == d.span_end(i)
        assert d.marker_string(d.span_end(i)) == f"</s_{i}>"
    assert d.marker(5) is None
    with pytest.raises(ValueError, match="s_50"):
        d.span_start(MAX_SPANS + 1)


def test_text_with_markers_round_trips(tokenizer):
    ids = tokenizer.encode("In <s_1> 2001 </s_1> , Elon Musk <s_2> joined </s_2> SpaceX.")
    assert ids[-1] == 1 and ids.count(tokenizer.dictionary.span_start(2)) == 1
    assert tokenizer.decode(ids, keep_markers=True) == "In <s_1> 2001 </s_1> , Elon Musk <s_2> joined </s_2> SpaceX."
    assert tokenizer.decode(ids) == "In 2001 , Elon Musk joined SpaceX."


def test_save_load_and_padding(tokenizer, tmp_path):
    padded = tokenizer.dictionary.pad_to(1128)
    assert len(padded) == 1128 and padded[1127] == "<unused_27>"
    padded.save(str(tmp_path / "dict.txt"))
    assert T5Dictionary.load(str(tmp_path / "dict.txt")).symbols == padded.symbols
    with pytest.raises(ValueError, match="do not match"):
        tokenizer.dictionary.pad_to(32128)  # far more rows than HF's padding: another model's embedding
    (tmp_path / "bad.txt").write_text("<pad> 0\n</s> 0\nnocount\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt:3"):
        T5Dictionary.load(str(tmp_path / "bad.txt"))
