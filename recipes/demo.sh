#!/usr/bin/env bash
# The whole SSR story on the shipped public-domain book (data/botchan.txt), small enough for 2 CPU cores:
#
#   bash recipes/demo.sh                      # about 14 minutes on 2 CPU cores; uses a GPU when torch sees one
#   SSR_DEMO_SCALE=tiny bash recipes/demo.sh  # a 2-minute smoke run of the same stages
#
#   1 data      the book is tokenized and split: its start is pre-training text, its end becomes a GEC task
#               (rule-based article/preposition/verb-form/agreement/dropped-word/duplicated-word errors, with the
#               gold edits written as .m2; test sentences of 5-15 tokens, training pairs from windows of the rest
#               of the book); a T5-layout SentencePiece model is trained on the pre-training text, and random
#               sequences of its pieces are written as copy pairs.
#   2 T5s       stand-ins for public T5 checkpoints, trained from scratch and exported as HF T5 directories: a
#               generator by T5 infilling (the pipeline's t5cont objective + fairseq-train), and a smaller student
#               that first learns to copy the random piece sequences and then T5 infilling. A public T5 copies
#               its input after a few fine-tuning steps, which is most of what GEC needs; a model this small never
#               learns that from 40k words of text (its GEC outputs were word salad), so the stand-in is taught
#               it explicitly (fairseq_ssr/demo/copy_task.py). --student and --generator take real HF T5
#               directories instead (a local t5-small and t5-base, say) and skip this stage.
#   3 SSR       recipes/ssr_pretrain.sh: the generator fills freshly masked spans (nucleus sampling), the pairs are
#               grouped by its loss into 5 curriculum groups, and the student is trained on them easiest first;
#               the same script with --variant t5cont continues the student by infilling for as many updates.
#   4 GEC       recipes/gec.sh fine-tunes both continued students on the synthetic pairs, decodes the held-out test
#               sentences with fairseq-generate and scores them with m2scorer against the .m2 gold.
#   5 report    WORK/report.md (every stage's numbers) and WORK/loss.png (training loss, curriculum phases marked).
#
# Everything goes to WORK; rerunning continues where a run stopped and redoes nothing that is finished.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

option WORK "$REPO/work/demo" "output directory" SSR_DEMO_WORK
option SCALE full "full or tiny (a smoke test of every stage)" SSR_DEMO_SCALE
option TEXT "$REPO/data/botchan.txt" "the book, one paragraph a line"
option STUDENT "" "Hugging Face T5 directory to continue instead of the student stand-in (a local t5-small, say); with --generator, stage 2 is skipped. Not validated here: this machine has no public checkpoint"
option GENERATOR "" "Hugging Face T5 directory that fills the spans instead of the generator stand-in (same vocabulary as --student)"
parse_flags "$@"
require "demo text" "$TEXT"
[[ -z $STUDENT && -z $GENERATOR ]] || [[ -n $STUDENT && -n $GENERATOR ]] || die "give --student and --generator together"
[[ -z $STUDENT ]] || { require_hf_t5 "$STUDENT"; require_hf_t5 "$GENERATOR"; }

# sizes: data flags | example subwords | generator shape | student shape |
#        updates: generator, student copying, student infilling, continual, GEC
case $SCALE in
  full)
    data_flags=(--heldout-share 0.4 --vocab-size 1000 --test-sentences 200 --valid-sentences 60 --variants 4
      --max-sentence-tokens 15 --max-errors 2 --copy-pairs 30000)
    example_tokens=128
    generator=(--d-model 192 --d-ff 768 --num-heads 6 --d-kv 32 --num-layers 3)
    student=(--d-model 128 --d-ff 512 --num-heads 4 --d-kv 32 --num-layers 2)
    updates=(250 700 200 150 400) ;;
  tiny)
    data_flags=(--heldout-share 0.4 --vocab-size 600 --test-sentences 30 --valid-sentences 20 --variants 2
      --max-sentence-tokens 15 --copy-pairs 2000)
    example_tokens=64
    generator=(--d-model 64 --d-ff 128 --num-heads 4 --d-kv 16 --num-layers 2)
    student=(--d-model 32 --d-ff 64 --num-heads 4 --d-kv 8 --num-layers 2)
    updates=(150 20 30 25 30) ;;
  *) die "--scale must be full or tiny, got '$SCALE'" ;;
esac

NGPU=$(gpu_count)
mkdir -p "$WORK"
TIMINGS=$WORK/timings.tsv
printf 'stage\tseconds\n' > "$TIMINGS"
timed() {  # timed NAME CMD...: run a stage and record its wall time for the report
  local name=$1 start=$SECONDS
  shift
  note "=== $name"
  "$@"
  printf '%s\t%s\n' "$name" $((SECONDS - start)) >> "$TIMINGS"
}

# 1 --------------------------------------------------------------------------------------------------------------
timed data run "$PYTHON" "$RECIPES/demo_data.py" --text "$TEXT" --out "$WORK/data" "${data_flags[@]}"

# 2 --------------------------------------------------------------------------------------------------------------
stand_in() {  # NAME DATA FORMAT UPDATES BATCH INIT [SHAPE...]: a T5 trained on DATA, from scratch in SHAPE (INIT -)
  local name=$1 data=$2 format=$3 max_update=$4 batch=$5 init=$6 args=() from=() start=()
  shift 6
  [[ $init == - ]] && from=(--arch t5 "$@" --feed-forward-proj relu --tie-word-embeddings) || start=(init="$init")
  train_args args "$data" "$WORK/$name" format="$format" lr=3e-3 warmup=50 max_update="$max_update" "$batch" "${start[@]}" \
    dropout=0.0 clip_norm=0 save_interval=0 seed=1 log_interval=10 ngpu="$NGPU"
  step "$WORK/$name/.train.done" "|" "$WORK/$name/train.log" fairseq-train "${args[@]}" "${from[@]}"
  run bash "$RECIPES/export_hf.sh" --checkpoint "$WORK/$name/checkpoint_last.pt" --out "$WORK/$name/hf"
}
stand_in_data() {  # T5 infilling pairs of the pre-training text; the random copy pairs, binarized
  run "$PYTHON" "$REPO/preprocess/pipeline.py" --text "$WORK/data/pretrain.txt" --spm "$WORK/data/spiece.model" \
    --work-dir "$WORK/t5/pipeline" --out-dir "$WORK/t5" --objectives t5cont --max-tokens "$example_tokens" --seed 1 \
    --no-progress-bar
  prepare_parallel "$WORK/data/spiece.model" "$WORK/t5/copy" "train:$WORK/data/copy/train.src:$WORK/data/copy/train.tgt" \
    "valid:$WORK/data/copy/valid.src:$WORK/data/copy/valid.tgt"
}
student_stand_in() {  # copying random pieces from scratch, then T5 infilling
  stand_in student-copy "$WORK/t5/copy" seq2seq "${updates[1]}" max_tokens=2048 - "${student[@]}"
  stand_in student "$WORK/t5/t5cont" marked "${updates[2]}" batch_size=32 "$WORK/student-copy/hf"
}
if [[ -n $STUDENT ]]; then  # real checkpoints: no stand-ins to train
  student_dir=$STUDENT generator_dir=$GENERATOR
else
  timed t5-data stand_in_data
  timed generator stand_in generator "$WORK/t5/t5cont" marked "${updates[0]}" batch_size=32 - "${generator[@]}"
  timed student student_stand_in
  student_dir=$WORK/student/hf generator_dir=$WORK/generator/hf
fi

# 3 --------------------------------------------------------------------------------------------------------------
# fresh masks (seed 2): the generator never saw these spans' truth; T5-cont trains on the very same examples
for variant in ssr t5cont; do
  timed "pretrain-$variant" run bash "$RECIPES/ssr_pretrain.sh" --variant "$variant" --text "$WORK/data/pretrain.txt" \
    --init "$student_dir" --generator "$generator_dir" --work "$WORK/pretrain" --max-len "$example_tokens" \
    --seed 2 --valid-every 20 --batch-seqs 16 --batch-size 16 --lr 1e-3 --warmup 20 --max-update "${updates[3]}" \
    --save-interval $((updates[3] / 5)) -- --log-interval 5
done

# 4 --------------------------------------------------------------------------------------------------------------
# each fine-tuned as it was pre-trained: SSR with the input as one span (the paper), T5-cont in T5's own format
declare -A format=([ssr]=whole [t5cont]=seq2seq)
for variant in ssr t5cont; do
  timed "gec-$variant" run bash "$RECIPES/gec.sh" --data "$WORK/data/gec" --init "$WORK/pretrain/$variant/hf" \
    --format "${format[$variant]}" --work "$WORK/gec/$variant" --test-m2 "$WORK/data/gec/test.m2" --lr 3e-3 --warmup 50 \
    --dropout 0 --label-smoothing 0 \
    --max-update "${updates[4]}" --max-tokens 2048 --save-interval $((updates[4] / 4)) --max-positions 128 \
    -- --log-interval 10
done

# 5 --------------------------------------------------------------------------------------------------------------
timed report run "$PYTHON" "$RECIPES/demo_report.py" --work "$WORK"
