#!/usr/bin/env bash
# Abstractive summarization (paper 4.2, Tables 1, 3-6): fine-tune a T5 or SSR model on CNN/DailyMail or XSum,
# decode the test set with the beam settings the field uses, and score it with ROUGE as published numbers are.
#
#   bash recipes/summarization.sh --dataset cnndm|xsum --data DIR --init HF_T5_DIR [-- EXTRA fairseq-train FLAGS]
#
# DIR holds {train,val,test}.{source,target}, one document or summary a line (the usual preprocessed release, as
# BART's fairseq recipe reads it; not shipped). Documents are wrapped as one span, "<s_1> doc </s_1>" -> "<s_1> sum",
# and cut to --max-source tokens. Decoding: CNN/DM beam 4, lenpen 2.0, max_len_b 140, min_len 55; XSum beam 6,
# lenpen 1.0, max_len_b 60, min_len 10; both no_repeat_ngram 3 (BART's settings). Every validation also decodes
# the first --valid-max-sentences validation documents with these settings and logs valid_rouge (ROUGE-L F of the
# raw text), and checkpoint_best.pt is the best by it (--select-by loss: by validation loss). Scoring: hypotheses
# and references PTB-tokenized (Stanford PTBTokenizer, as BART's fairseq recipe does; ROUGE lowercases), then
# files2rouge: the BART-style numbers the paper's tables compare with. --rouge-tokenize 0 scores the raw text (on
# which ROUGE-L sees each summary as one sentence: several points lower). Outputs in WORK: bin/, checkpoints/,
# train.log, test.hyp and rouge.txt.
# The paper gives no fine-tuning hyper-parameters: updates and warm-up follow BART's recipe, the rest is ours.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

option DATASET cnndm "cnndm or xsum: picks the decoding settings and training length"
option DATA "" "directory with {train,val,test}.{source,target}"
option INIT "" "Hugging Face T5 directory to fine-tune (export_hf.sh output of an SSR model, or a T5)"
option WORK '$REPO/work/summarization/$DATASET' "output directory"
option FORMAT whole "whole (the paper: the source as one span <s_1> .. </s_1>) or seq2seq (plain T5 baselines)"
option LR 1e-4 "peak learning rate (AdamW, linear warm-up and decay)"
option WARMUP 500 "warm-up updates"
option MAX_UPDATE "" "training updates [cnndm 20000, xsum 15000]"
option MAX_TOKENS 8192 "tokens per GPU per step"
option UPDATE_FREQ 4 "steps accumulated per update"
option LABEL_SMOOTHING 0.1 "label smoothing"
option DROPOUT 0.1 "dropout rate"
option MAX_SOURCE 512 "documents are cut to this many tokens"
option MAX_TARGET 256 "longer training summaries are left out (and counted)"
option SAVE_INTERVAL 1000 "updates between validations and checkpoints"
option SEED 1 "random seed"
option CHECKPOINT checkpoint_best.pt "checkpoint to decode (in WORK/checkpoints)"
option BEAM "" "beam size [cnndm 4, xsum 6]"
option LENPEN "" "length penalty [cnndm 2.0, xsum 1.0]"
option MAX_LEN_B "" "longest summary in tokens [cnndm 140, xsum 60]"
option MIN_LEN "" "shortest summary in tokens [cnndm 55, xsum 10]"
option NO_REPEAT_NGRAM 3 "no repeated n-grams of this size"
option GEN_MAX_TOKENS 16384 "tokens per decoding batch"
option SELECT_BY rouge "checkpoint_best.pt by: rouge (validation ROUGE-L of decoding) or loss (validation loss)"
option VALID_MAX_SENTENCES 1000 "documents decoded at each validation for --select-by rouge (0: all)"
option ROUGE_TOKENIZE 1 "1: PTB-tokenize both sides first (files2rouge --tokenize; the paper's numbers); 0: raw text"
option ROUGE_PYTHON 0 "1: score with rouge-score in Python (files2rouge --python) instead of ROUGE-1.5.5"
parse_flags "$@"
[[ $FORMAT == whole || $FORMAT == seq2seq ]] || die "--format must be whole or seq2seq, got '$FORMAT'"
[[ $SELECT_BY == rouge || $SELECT_BY == loss ]] || die "--select-by must be rouge or loss, got '$SELECT_BY'"
[[ $ROUGE_TOKENIZE == 0 || $ROUGE_TOKENIZE == 1 ]] || die "--rouge-tokenize must be 0 or 1, got '$ROUGE_TOKENIZE'"
case $DATASET in
  cnndm) presets=(20000 4 2.0 140 55) ;;
  xsum) presets=(15000 6 1.0 60 10) ;;
  *) die "--dataset must be cnndm or xsum, got '$DATASET'" ;;
esac
: "${MAX_UPDATE:=${presets[0]}}" "${BEAM:=${presets[1]}}" "${LENPEN:=${presets[2]}}" "${MAX_LEN_B:=${presets[3]}}"
: "${MIN_LEN:=${presets[4]}}"
require_set DATA INIT
require "summarization data" "$DATA"/{train,val,test}.{source,target}
require_hf_t5 "$INIT"

select=(metric=none)
[[ $SELECT_BY == loss ]] || select=(metric=rouge eval_max_sentences="$VALID_MAX_SENTENCES" eval_beam="$BEAM"
  eval_lenpen="$LENPEN" eval_max_len_a=0 eval_max_len_b="$MAX_LEN_B" eval_min_len="$MIN_LEN"
  eval_no_repeat_ngram_size="$NO_REPEAT_NGRAM")

NGPU=$(gpu_count)
DEVICE=$(device_flags "$NGPU")
mkdir -p "$WORK"
prepare_parallel "$INIT/spiece.model" "$WORK/bin" "train:$DATA/train.source:$DATA/train.target" \
  "valid:$DATA/val.source:$DATA/val.target" "test:$DATA/test.source:$DATA/test.target"

finetune "$FORMAT" "$WORK/bin" "$INIT" "$WORK/checkpoints" "$WORK/train.log" lr="$LR" warmup="$WARMUP" \
  max_update="$MAX_UPDATE" max_tokens="$MAX_TOKENS" update_freq="$UPDATE_FREQ" label_smoothing="$LABEL_SMOOTHING" \
  dropout="$DROPOUT" save_interval="$SAVE_INTERVAL" seed="$SEED" ngpu="$NGPU" "${select[@]}" \
  -- --truncate-source --max-source-positions "$MAX_SOURCE" --max-target-positions "$MAX_TARGET" "${EXTRA_ARGS[@]}"

decode "$FORMAT" "$WORK/bin" "$WORK/checkpoints/$CHECKPOINT" "$DATA/test.source" "$WORK/test.hyp" $DEVICE \
  --truncate-source --max-source-positions "$MAX_SOURCE" --max-target-positions "$MAX_TARGET" \
  --beam "$BEAM" --lenpen "$LENPEN" --max-len-a 0 --max-len-b "$MAX_LEN_B" --min-len "$MIN_LEN" \
  --no-repeat-ngram-size "$NO_REPEAT_NGRAM" --max-tokens "$GEN_MAX_TOKENS"
rouge=(files2rouge "$DATA/test.target" "$WORK/test.hyp")
[[ $ROUGE_TOKENIZE == 0 ]] || rouge+=(--tokenize)
[[ $ROUGE_PYTHON == 0 ]] || rouge+=(--python)
step "$WORK/.rouge.done" --stamp "$WORK/test.hyp" ">" "$WORK/rouge.txt" "${rouge[@]}"
scored=$( ((ROUGE_TOKENIZE)) && echo "PTB-tokenized" || echo "raw text")
if [[ -z ${DRY_RUN:-} ]]; then
  note "ROUGE ($scored) of $WORK/test.hyp against $DATA/test.target:"
  cat "$WORK/rouge.txt" >&2
fi
