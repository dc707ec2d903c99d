#!/usr/bin/env bash
# Export a trained model to a Hugging Face T5 directory (config.json, model.safetensors, spiece.model) that
# transformers' T5ForConditionalGeneration loads as it is, and that the fine-tuning recipes take as --init.
#
#   bash recipes/export_hf.sh --checkpoint CKPT_OR_DIR [--out DIR]
#
# CHECKPOINT is a fairseq checkpoint (checkpoint_last.pt, checkpoint_best.pt, a converted model.pt) or a save
# directory (its checkpoint_last.pt is taken). The SentencePiece model is found beside the checkpoint or in the
# training data directory the checkpoint records; --spm names it otherwise.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

option CHECKPOINT "" "fairseq checkpoint file, or a save directory (its checkpoint_last.pt)"
option OUT "" "Hugging Face directory to write [hf/ beside the checkpoint]"
option SPM "" "SentencePiece model of the checkpoint, when it cannot be found"
parse_flags "$@"
require_set CHECKPOINT
[[ -d $CHECKPOINT ]] && CHECKPOINT=$CHECKPOINT/checkpoint_last.pt
require "checkpoint" "$CHECKPOINT"
[[ -n $OUT ]] || OUT=$(dirname "$CHECKPOINT")/hf
convert=(ssr-convert to-hf "$CHECKPOINT" "$OUT")
[[ -z $SPM ]] || { require "SentencePiece model" "$SPM"; convert+=(--spm "$SPM"); }
step "$OUT/.export.done" --stamp "$CHECKPOINT" "${convert[@]}"  # a checkpoint trained further is exported again
