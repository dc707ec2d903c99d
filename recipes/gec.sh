#!/usr/bin/env bash
# Grammatical error correction (paper 4.2, Table 2): fine-tune a T5 or SSR model on parallel GEC text, decode the
# CoNLL-2014 test set and score it with M^2.
#
#   bash recipes/gec.sh --data DIR --init HF_T5_DIR [--work work/gec] [-- EXTRA fairseq-train FLAGS]
#
# DIR holds train.src/train.tgt and valid.src/valid.tgt: tokenized erroneous/corrected sentences, one a line (the
# paper fine-tunes on Lang-8, NUCLE, FCE and W&I+LOCNESS, without synthetic data; their licences forbid shipping
# them). Inputs are wrapped as the paper fine-tunes SSR, "<s_1> x </s_1>" -> "<s_1> y". The test input is the S lines
# of --test-m2 (shipped: the CoNLL-2014 gold, 1312 sentences, two annotators). With --dev-m2 (the gold .m2 whose S
# lines are valid.src, e.g. CoNLL-2013 or the BEA-2019 dev set), every validation also decodes the dev set with the
# test's beam settings and logs valid_f0.5, and checkpoint_best.pt is the best F0.5 instead of the lowest loss.
# Outputs in WORK: bin/ (binarized data), checkpoints/, train.log, test.hyp (one corrected sentence a line) and
# m2.txt (P, R, F0.5).
# The paper gives no fine-tuning hyper-parameters; the defaults below are ours. All GPUs that torch sees are used
# (fairseq starts one process per GPU); restrict them with CUDA_VISIBLE_DEVICES.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

option DATA "" "directory with train.{src,tgt} and valid.{src,tgt}"
option INIT "" "Hugging Face T5 directory to fine-tune (export_hf.sh output of an SSR model, or a T5)"
option WORK "$REPO/work/gec" "output directory"
option FORMAT whole "whole (the paper: the source as one span <s_1> .. </s_1>) or seq2seq (plain T5 baselines)"
option TEST_M2 "$REPO/data/conll14/official-2014.combined.m2" "gold .m2 of the test set; its S lines are the input"
option DEV_M2 none "gold .m2 of the dev set, its S lines = valid.src: checkpoints chosen by F0.5 on it (none: by loss)"
option VALID_MAX_SENTENCES 0 "with --dev-m2: score the first N dev sentences only (0: all)"
option LR 1e-4 "peak learning rate (AdamW, linear warm-up and decay)"
option WARMUP 1000 "warm-up updates"
option MAX_UPDATE 20000 "training updates"
option MAX_TOKENS 8192 "tokens per GPU per step"
option UPDATE_FREQ 1 "steps accumulated per update"
option LABEL_SMOOTHING 0.1 "label smoothing"
option DROPOUT 0.1 "dropout rate"
option MAX_POSITIONS 512 "longest source/target in tokens (longer training pairs are left out, longer test input fails)"
option SAVE_INTERVAL 1000 "updates between validations and checkpoints"
option SEED 1 "random seed"
option CHECKPOINT checkpoint_best.pt "checkpoint to decode (in WORK/checkpoints)"
option BEAM 5 "beam size"
option LENPEN 1.0 "length penalty"
option MAX_LEN_A 1.2 "longest output: MAX_LEN_A x source length + MAX_LEN_B"
option MAX_LEN_B 10 "see MAX_LEN_A"
option GEN_MAX_TOKENS 8192 "tokens per decoding batch"
parse_flags "$@"
[[ $FORMAT == whole || $FORMAT == seq2seq ]] || die "--format must be whole or seq2seq, got '$FORMAT'"
require_set DATA INIT
require "GEC training data" "$DATA/train.src" "$DATA/train.tgt" "$DATA/valid.src" "$DATA/valid.tgt"
require_hf_t5 "$INIT"
require "test gold edits (.m2)" "$TEST_M2"
select=(metric=none)
if [[ $DEV_M2 != none ]]; then
  require "dev gold edits (.m2)" "$DEV_M2"
  line=$(first_difference "$DEV_M2" "$DATA/valid.src")
  [[ -z $line ]] || die "$DATA/valid.src:$line: differs from sentence $line of $DEV_M2 (its S lines must be valid.src)"
  select=(metric=f0.5 eval_m2="$DEV_M2" eval_max_sentences="$VALID_MAX_SENTENCES" eval_beam="$BEAM"
    eval_lenpen="$LENPEN" eval_max_len_a="$MAX_LEN_A" eval_max_len_b="$MAX_LEN_B")
fi

NGPU=$(gpu_count)
DEVICE=$(device_flags "$NGPU")
mkdir -p "$WORK"
# the test input: the source sentences of the .m2 file; the placeholder target keeps fairseq-preprocess happy
step "$WORK/.test.done" --stamp "$TEST_M2" ">" "$WORK/test.src" awk '/^S /{ print substr($0, 3) }' "$TEST_M2"
prepare_parallel "$INIT/spiece.model" "$WORK/bin" "train:$DATA/train.src:$DATA/train.tgt" \
  "valid:$DATA/valid.src:$DATA/valid.tgt" "test:$WORK/test.src:$WORK/test.src"

finetune "$FORMAT" "$WORK/bin" "$INIT" "$WORK/checkpoints" "$WORK/train.log" lr="$LR" warmup="$WARMUP" \
  max_update="$MAX_UPDATE" max_tokens="$MAX_TOKENS" update_freq="$UPDATE_FREQ" label_smoothing="$LABEL_SMOOTHING" \
  dropout="$DROPOUT" save_interval="$SAVE_INTERVAL" seed="$SEED" ngpu="$NGPU" "${select[@]}" \
  -- --max-source-positions "$MAX_POSITIONS" --max-target-positions "$MAX_POSITIONS" "${EXTRA_ARGS[@]}"

decode "$FORMAT" "$WORK/bin" "$WORK/checkpoints/$CHECKPOINT" "$WORK/test.src" "$WORK/test.hyp" $DEVICE \
  --beam "$BEAM" --lenpen "$LENPEN" --max-len-a "$MAX_LEN_A" --max-len-b "$MAX_LEN_B" \
  --max-tokens "$GEN_MAX_TOKENS" --max-source-positions "$MAX_POSITIONS" --max-target-positions "$MAX_POSITIONS"
step "$WORK/.m2.done" --stamp "$WORK/test.hyp" --stamp "$TEST_M2" ">" "$WORK/m2.txt" m2scorer "$WORK/test.hyp" "$TEST_M2"
[[ -n ${DRY_RUN:-} ]] || { note "M^2 of $WORK/test.hyp against $TEST_M2:"; cat "$WORK/m2.txt" >&2; }
