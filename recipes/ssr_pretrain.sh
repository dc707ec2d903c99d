#!/usr/bin/env bash
# SSR continual pre-training (paper 3-4.1) from a Hugging Face T5, and the paper's baselines and ablations.
#
#   bash recipes/ssr_pretrain.sh --text "a.txt b.txt.gz" --init T5_BASE_DIR --generator T5_LARGE_DIR \
#       [--variant ssr] [--work work/pretrain] [-- EXTRA fairseq-train FLAGS]
#
# Stages (each skipped when already done; rerun the same command after a crash):
#   data:   text -> examples of at most --max-len subwords -> ~30% of each masked in Poisson(3) spans -> imperfect
#           spans sampled by the generator (nucleus, p=0.9, with its per-token loss) -> binarized pairs, SSR split
#           into --groups curriculum groups by difficulty. On several GPUs span generation runs one shard per GPU
#           under torchrun. Files: WORK/data/{examples.jsonl,masked.jsonl,generated/} and one dataset per objective
#           and score, WORK/data/DATASET/ (with stats.json: examples, masked share, skips, group sizes).
#   train:  fairseq-train from --init with the curriculum (easiest group first, phases of equal length over
#           --max-update, the next group's share growing gradually: the paper "gradually switch[es] to more difficult
#           groups"). Checkpoints and train.log in WORK/VARIANT/.
#   export: WORK/VARIANT/hf, a Hugging Face T5 directory that the fine-tuning recipes take as --init.
#
# --variant picks the paper's row (Tables 1-2 baselines, Table 6 ablations); data stages are shared between variants:
#   ssr (SSR-base), t5cont (T5-cont: infilling), distilt5 (DistilT5: infilling with the generator's spans as targets),
#   denoise (DenoiseT5: shuffled/deleted/replaced words -> text), no-curriculum, anti-curriculum (hardest first),
#   loss-only (groups by mean per-token loss), length-only (groups by imperfect-span length).
#
# Paper defaults: 256-subword sequences, 512 sequences per update (--batch-size x --update-freq x GPUs; --update-freq
# is derived from --batch-seqs), AdamW, lr 5e-5 with 8,000 linear warm-up updates, 100k updates, k=5 groups, T5-large
# as generator with top-p 0.9 (the pipeline stages' defaults, shown by --help). The learning rate then decays
# linearly to 0 at --max-update (fairseq's polynomial_decay, power 1) and weight decay is 0: Hugging Face
# Transformers' Trainer defaults, which the paper's implementation used; the paper names only the warm-up.
# Generator and model must share T5's vocabulary (all public T5s do).
#
# Several GPUs on one machine: nothing to add; fairseq-train starts one process per visible GPU (fairseq's own DDP)
# and --update-freq shrinks so that an update still holds --batch-seqs sequences. Several machines (shared disk):
#   node 0:      bash recipes/ssr_pretrain.sh ... --stages data                      (once, 8 GPUs generate spans)
#   every node:  bash recipes/ssr_pretrain.sh ... --stages train --nnodes 2 --node-rank R --master-addr NODE0_HOST
#   node 0:      bash recipes/ssr_pretrain.sh ... --stages export
# which runs `torchrun --nnodes 2 --nproc-per-node 8 --node-rank R ... -m fairseq_cli.train ...
# --distributed-world-size 16` on each node (with 8 GPUs a node, 512 sequences = 32 per GPU x 16 GPUs, --update-freq 1).
# Node 0 (rank 0) writes the checkpoints and WORK/VARIANT/train.log; node R > 0 appends its ranks' output (warnings and
# errors only) to WORK/VARIANT/train.node-R.log. With --ngpu 0 every node runs one CPU process over gloo: the same
# commands with --master-addr 127.0.0.1, started twice on one machine, debug the several-machine path without GPUs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
stage_defaults

option TEXT "" "plain-text files, one document or paragraph a line (.gz allowed), separated by spaces"
option INIT "" "Hugging Face T5 directory to continue training (the paper: T5-small/base/large)"
option GENERATOR "" "imperfect span generator: Hugging Face T5 directory or fairseq checkpoint (the paper: T5-large)"
option GENERATOR_SPM "" "SentencePiece model of a fairseq-checkpoint generator, when not beside it or in its data"
option VARIANT ssr "ssr, t5cont, distilt5, denoise, no-curriculum, anti-curriculum, loss-only or length-only"
option WORK "$REPO/work/pretrain" "output directory (data shared by the variants, WORK/VARIANT per run)"
option STAGES data,train,export "stages to run (comma-separated)"
option MAX_LEN '$DEFAULT_TEXT_MAX_TOKENS' "subwords per example (sources grow by markers and fills: up to twice this is trained)"
option MASK_RATIO '$DEFAULT_MASK_MASK_RATIO' "share of each example's subwords masked"
option POISSON_LAMBDA '$DEFAULT_MASK_POISSON_LAMBDA' "mean masked span length"
option SEED '$DEFAULT_MASK_SEED' "seed of masking, span sampling, noise and training"
option TOP_P '$DEFAULT_SAMPLER_TOP_P' "nucleus sampling mass of the generator"
option TOP_K '$DEFAULT_SAMPLER_TOP_K' "also cut to the k likeliest tokens (0: off; HF generate's old default, 50, is what the paper's code got)"
option GEN_BATCH_TOKENS '$DEFAULT_SAMPLER_BATCH_TOKENS' "generator batch in tokens (source + new tokens per row)"
option NUM_GROUPS '$DEFAULT_BINARIZE_GROUPS' "curriculum groups (the paper's k)"
option VALID_EVERY '$DEFAULT_BINARIZE_VALID_EVERY' "hold out every N-th example for validation"
option BATCH_SEQS 512 "sequences per update, over all GPUs and accumulation steps"
option BATCH_SIZE 64 "sequences per GPU per step"
option LR 5e-5 "peak learning rate"
option WARMUP 8000 "linear warm-up updates"
option MAX_UPDATE 100000 "updates (also the length of the whole curriculum)"
option WEIGHT_DECAY 0.0 "AdamW weight decay"
option CLIP_NORM 1.0 "gradient clipping"
option DROPOUT 0.1 "dropout rate"
option SAVE_INTERVAL 5000 "updates between validations and checkpoints"
option CURRICULUM_SCHEDULE "" "update numbers after which each next group starts [even split of --max-update]"
option CURRICULUM_MIX gradual "gradual (the paper's \"gradually switch\": the next group's share grows linearly) or hard (one group per phase)"
option NGPU "" "GPUs per node [all that torch sees]"
option NNODES 1 "machines"
option NODE_RANK 0 "this machine's rank (0 .. NNODES-1)"
option MASTER_ADDR localhost "host of rank 0 (several machines)"
option MASTER_PORT 29500 "port on rank 0 (several machines)"
parse_flags "$@"

case $VARIANT in
  ssr) objective=ssr score=sum_nll order=easy-to-hard ;;
  no-curriculum) objective=ssr score=sum_nll order=none ;;
  anti-curriculum) objective=ssr score=sum_nll order=hard-to-easy ;;
  loss-only) objective=ssr score=mean_nll order=easy-to-hard ;;
  length-only) objective=ssr score=length order=easy-to-hard ;;
  t5cont | distilt5 | denoise) objective=$VARIANT score= order= ;;
  *) die "unknown --variant '$VARIANT' (see --help)" ;;
esac
has_stage() { [[ ,$STAGES, == *,$1,* ]]; }
for s in ${STAGES//,/ }; do [[ $s == data || $s == train || $s == export ]] || die "unknown stage '$s'"; done
data=$WORK/data
dataset=$data/$objective${score:+-$score}
save=$WORK/$VARIANT
[[ -n $NGPU ]] || NGPU=$(gpu_count)
workers=$((NGPU > 0 ? NGPU * NNODES : NNODES))

if has_stage data; then
  require_set TEXT INIT
  require_hf_t5 "$INIT"
  read -r -a text_files <<<"$TEXT"
  require "text file" "${text_files[@]}"
  quiet=()
  [[ -t 2 ]] || quiet=(--no-progress-bar)
  run mkdir -p "$data"
  run "$PYTHON" "$REPO/preprocess/make_examples.py" --text "${text_files[@]}" --spm "$INIT/spiece.model" \
    --out "$data/examples.jsonl" --max-tokens "$MAX_LEN" "${quiet[@]}"
  input=$data/examples.jsonl
  if [[ $objective != denoise ]]; then
    run "$PYTHON" "$REPO/preprocess/mask_spans.py" --input "$data/examples.jsonl" --out "$data/masked.jsonl" \
      --mask-ratio "$MASK_RATIO" --poisson-lambda "$POISSON_LAMBDA" --seed "$SEED" "${quiet[@]}"
    input=$data/masked.jsonl
  fi
  if [[ $objective == ssr || $objective == distilt5 ]]; then
    require_set GENERATOR
    require "generator" "$GENERATOR"
    gen_spm=$GENERATOR_SPM
    [[ -n $gen_spm || ! -d $GENERATOR ]] || gen_spm=$GENERATOR/spiece.model
    if [[ -n $gen_spm ]]; then
      require "the generator's SentencePiece model" "$gen_spm"
      cmp -s "$gen_spm" "$INIT/spiece.model" ||
        die "the generator ($gen_spm) and --init ($INIT/spiece.model) have different vocabularies"
    fi
    generate=("$REPO/preprocess/generate_spans.py" --input "$data/masked.jsonl" --model "$GENERATOR"
      --out-dir "$data/generated" --top-p "$TOP_P" --top-k "$TOP_K" --seed "$SEED" --batch-tokens "$GEN_BATCH_TOKENS" "${quiet[@]}")
    [[ -z $GENERATOR_SPM ]] || generate+=(--spm "$GENERATOR_SPM")
    if ((NGPU > 1)); then  # one shard per GPU; each resumes by itself
      run torchrun --standalone --nproc-per-node "$NGPU" "${generate[@]}"
    else
      run "$PYTHON" "${generate[@]}"
    fi
    input=$data/generated
  fi
  binarize=("$PYTHON" "$REPO/preprocess/binarize.py" --input "$input" --out "$dataset" --spm "$INIT/spiece.model"
    --objective "$objective" --valid-every "$VALID_EVERY" --seed "$SEED" "${quiet[@]}")
  [[ $objective != ssr ]] || binarize+=(--groups "$NUM_GROUPS" --score "$score")
  run "${binarize[@]}"
fi

if has_stage train; then
  require_set INIT
  require_hf_t5 "$INIT"
  [[ -n ${DRY_RUN:-} ]] || require "binarized $objective data (run the data stage first)" "$dataset/stats.json"
  per_update=$((BATCH_SIZE * workers))
  ((BATCH_SEQS % per_update == 0)) ||
    die "--batch-seqs $BATCH_SEQS is not a multiple of --batch-size $BATCH_SIZE x $workers GPUs"
  update_freq=$((BATCH_SEQS / per_update))
  format=marked
  [[ $objective != denoise ]] || format=seq2seq
  train_args train "$dataset" "$save" format="$format" init="$INIT" dropout="$DROPOUT" weight_decay="$WEIGHT_DECAY" \
    clip_norm="$CLIP_NORM" lr="$LR" warmup="$WARMUP" max_update="$MAX_UPDATE" batch_size="$BATCH_SIZE" \
    update_freq="$update_freq" save_interval="$SAVE_INTERVAL" keep=2 seed="$SEED" ngpu="$NGPU"
  train+=(--max-source-positions $((2 * MAX_LEN)) --max-target-positions $((2 * MAX_LEN)))
  if [[ $objective == ssr ]]; then
    train+=(--curriculum-order "$order")
    if [[ $order != none ]]; then  # no curriculum has no phases to mix or schedule
      train+=(--curriculum-mix "$CURRICULUM_MIX")
      [[ -z $CURRICULUM_SCHEDULE ]] || train+=(--curriculum-schedule "$CURRICULUM_SCHEDULE")
    fi
  fi
  train+=("${EXTRA_ARGS[@]}")
  log=$save/train.log marker=$save/.train.done
  if ((NNODES > 1)); then  # one process per GPU, or one CPU process a node (gloo: fairseq_ssr/distributed.py)
    launch=(torchrun --nnodes "$NNODES" --nproc-per-node $((NGPU > 0 ? NGPU : 1)) --node-rank "$NODE_RANK"
      --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" -m fairseq_cli.train)
    train+=(--distributed-world-size "$workers")
    ((NODE_RANK == 0)) || log=$save/train.node-$NODE_RANK.log marker=$save/.train.node-$NODE_RANK.done
  else
    launch=(fairseq-train)
  fi
  step "$marker" "|" "$log" "${launch[@]}" "${train[@]}"
fi

if has_stage export && ((NODE_RANK == 0)); then
  run bash "$RECIPES/export_hf.sh" --checkpoint "$save/checkpoint_last.pt" --out "$save/hf"
fi
