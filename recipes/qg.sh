#!/usr/bin/env bash
# Question generation on SQuAD (paper 4.2, Table 2): fine-tune a T5 or SSR model on the Du & Cardie split, decode the
# test set and score BLEU-4, METEOR and CIDEr (with BLEU-1..3 and ROUGE-L) as the QG literature does.
#
#   bash recipes/qg.sh --data DIR --init HF_T5_DIR [--pool-by FILE] [-- EXTRA fairseq-train FLAGS]
#
# DIR holds {train,dev,test}.{source,target}: a source line is the answer and its passage as you prepared them
# (e.g. "answer [SEP] passage", the paper concatenates passage and answer), a target line the question (not shipped).
# Sources are wrapped as one span, "<s_1> x </s_1>" -> "<s_1> question", and cut to --max-source tokens.
# --pool-by FILE (line-aligned with test.source, e.g. Du et al.'s source sentences) pools the lines that share a
# sentence into one item with all its reference questions, as Du et al.'s evaluation does; without it every line is
# its own item. Outputs in WORK: bin/, checkpoints/, train.log, test.hyp and scores.txt. METEOR needs Java.
# The paper gives no fine-tuning hyper-parameters; the defaults below are ours.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

option DATA "" "directory with {train,dev,test}.{source,target}"
option INIT "" "Hugging Face T5 directory to fine-tune (export_hf.sh output of an SSR model, or a T5)"
option WORK "$REPO/work/qg" "output directory"
option FORMAT whole "whole (the paper: the source as one span <s_1> .. </s_1>) or seq2seq (plain T5 baselines)"
option LR 1e-4 "peak learning rate (AdamW, linear warm-up and decay)"
option WARMUP 500 "warm-up updates"
option MAX_UPDATE 10000 "training updates"
option MAX_TOKENS 8192 "tokens per GPU per step"
option UPDATE_FREQ 1 "steps accumulated per update"
option LABEL_SMOOTHING 0.1 "label smoothing"
option DROPOUT 0.1 "dropout rate"
option MAX_SOURCE 512 "sources are cut to this many tokens"
option MAX_TARGET 64 "longer training questions are left out (and counted)"
option SAVE_INTERVAL 1000 "updates between validations and checkpoints"
option SEED 1 "random seed"
option CHECKPOINT checkpoint_best.pt "checkpoint to decode (in WORK/checkpoints)"
option BEAM 5 "beam size"
option LENPEN 1.0 "length penalty"
option MAX_LEN_B 48 "longest question in tokens"
option GEN_MAX_TOKENS 16384 "tokens per decoding batch"
option POOL_BY "" "file line-aligned with test.source whose equal lines are pooled into one item"
option METEOR 1 "0: skip METEOR (no Java needed)"
parse_flags "$@"
[[ $FORMAT == whole || $FORMAT == seq2seq ]] || die "--format must be whole or seq2seq, got '$FORMAT'"
require_set DATA INIT
require "question generation data" "$DATA"/{train,dev,test}.{source,target}
require_hf_t5 "$INIT"
[[ -z $POOL_BY ]] || require "--pool-by file" "$POOL_BY"

NGPU=$(gpu_count)
DEVICE=$(device_flags "$NGPU")
mkdir -p "$WORK"
prepare_parallel "$INIT/spiece.model" "$WORK/bin" "train:$DATA/train.source:$DATA/train.target" \
  "valid:$DATA/dev.source:$DATA/dev.target" "test:$DATA/test.source:$DATA/test.target"

finetune "$FORMAT" "$WORK/bin" "$INIT" "$WORK/checkpoints" "$WORK/train.log" lr="$LR" warmup="$WARMUP" \
  max_update="$MAX_UPDATE" max_tokens="$MAX_TOKENS" update_freq="$UPDATE_FREQ" label_smoothing="$LABEL_SMOOTHING" \
  dropout="$DROPOUT" save_interval="$SAVE_INTERVAL" seed="$SEED" ngpu="$NGPU" \
  -- --truncate-source --max-source-positions "$MAX_SOURCE" --max-target-positions "$MAX_TARGET" "${EXTRA_ARGS[@]}"

decode "$FORMAT" "$WORK/bin" "$WORK/checkpoints/$CHECKPOINT" "$DATA/test.source" "$WORK/test.hyp" $DEVICE \
  --truncate-source --max-source-positions "$MAX_SOURCE" --max-target-positions "$MAX_TARGET" \
  --beam "$BEAM" --lenpen "$LENPEN" --max-len-a 0 --max-len-b "$MAX_LEN_B" --max-tokens "$GEN_MAX_TOKENS"
score=(ssr-qg-eval "$WORK/test.hyp" "$DATA/test.target")
[[ -z $POOL_BY ]] || score+=(--sources "$POOL_BY")
[[ $METEOR == 1 ]] || score+=(--no-meteor)
step "$WORK/.scores.done" --stamp "$WORK/test.hyp" ">" "$WORK/scores.txt" "${score[@]}"
[[ -n ${DRY_RUN:-} ]] || { note "question generation scores of $WORK/test.hyp:"; cat "$WORK/scores.txt" >&2; }
