# Shared by the recipes (sourced, not run): options from flags or environment variables, printed commands,
# resumable steps, input checks, the device, and the fine-tuning stages that gec.sh, summarization.sh and qg.sh
# have in common (text -> binarized data, fairseq-train from a Hugging Face T5, fairseq-generate -> hypotheses).
#
# Every recipe declares its options with `option NAME DEFAULT HELP [ENV]`; `--name-with-dashes VALUE` (or
# --name=VALUE) and the environment variable ENV (default: NAME) set it, flags winning; a default may refer to
# earlier options when written in single quotes.
# `DRY_RUN=1` prints every command without running any. Words after `--` go to fairseq-train as extra flags.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RECIPES=$REPO/recipes
# The project's own environment when it exists and none is active, so that `bash recipes/X.sh` just works.
if [[ -z ${VIRTUAL_ENV:-} && -x $REPO/.venv/bin/python ]]; then
  PATH=$REPO/.venv/bin:$PATH
fi
PYTHON=${PYTHON:-python}
USER_DIR=$REPO/fairseq_ssr

note() { echo "[$(basename "$0")] $*" >&2; }
die() { echo "[$(basename "$0")] error: $*" >&2; exit 2; }

# --- options ------------------------------------------------------------------------------------------------------
OPTIONS=()
declare -A OPTION_DEFAULT OPTION_HELP OPTION_ENV
EXTRA_ARGS=()

option() {  # option NAME DEFAULT HELP [ENV]
  OPTIONS+=("$1")
  OPTION_DEFAULT[$1]=$2
  OPTION_HELP[$1]=$3
  OPTION_ENV[$1]=${4:-$1}
}

usage() {  # the recipe's header comment, then its options
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
  echo
  echo "options (flag, environment variable) [default]:"
  local name flag
  for name in "${OPTIONS[@]}"; do
    flag=--${name,,}
    printf '  %-36s %s\n' "${flag//_/-} (${OPTION_ENV[$name]})" "${OPTION_HELP[$name]} [${OPTION_DEFAULT[$name]:-required}]"
  done
}

parse_flags() {  # parse_flags "$@": a flag wins over the environment, which wins over the default
  local name value env
  for name in "${OPTIONS[@]}"; do  # the environment first; flags below override it
    env=${OPTION_ENV[$name]}
    if [[ $env != "$name" ]]; then
      if [[ -n ${!env+set} ]]; then printf -v "$name" '%s' "${!env}"; else unset "$name"; fi
    fi
  done
  while (($#)); do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --) shift; EXTRA_ARGS=("$@"); break ;;
      --*=*) name=${1%%=*}; value=${1#*=}; shift ;;
      --*) [[ $# -ge 2 ]] || die "$1 needs a value"; name=$1; value=$2; shift 2 ;;
      *) die "unexpected argument '$1': options are --name VALUE (see --help)" ;;
    esac
    name=${name#--}; name=${name//-/_}; name=${name^^}
    [[ -v "OPTION_HELP[$name]" ]] || die "unknown option --${name,,} (see --help)"
    printf -v "$name" '%s' "$value"
  done
  for name in "${OPTIONS[@]}"; do
    if [[ -z ${!name+set} ]]; then
      eval "$name=\"${OPTION_DEFAULT[$name]}\""
    fi
  done
}

# --- commands -----------------------------------------------------------------------------------------------------
quote() {  # the words as a shell would need them typed: plain, or in single quotes
  local out=() w
  for w in "$@"; do
    if [[ $w =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+=("$w"); else out+=("'${w//\'/\'\\\'\'}'"); fi
  done
  echo "${out[*]}"
}

run() {  # run CMD...: print it, then run it (only print it under DRY_RUN=1)
  echo "+ $(quote "$@")" >&2
  [[ -n ${DRY_RUN:-} ]] || "$@"
}

# step MARKER [--stamp FILE]... [">" OUT | "|" LOG] CMD...: a resumable stage. Skipped when MARKER records this
# very command, and the same size and time of each stamped input file, from a run that ended well; otherwise printed
# and run, stdout going to OUT (written whole or not at all) or appended to LOG while also shown, and MARKER written
# on success. A changed command (other flags) or a changed input runs again; fairseq-train then continues from its
# checkpoint_last.pt.
step() {
  local marker=$1 mode= target= stamps=
  shift
  while [[ $1 == --stamp ]]; do
    stamps+=" $(stat -c '%n:%s:%Y' "$2" 2>/dev/null || echo "$2:missing")"
    shift 2
  done
  if [[ $1 == ">" || $1 == "|" ]]; then mode=$1; target=$2; shift 2; fi
  local cmd
  cmd=$(quote "$@")
  case $mode in
    ">") cmd+=" > $(quote "$target")" ;;
    "|") cmd+=" 2>&1 | tee -a $(quote "$target")" ;;
  esac
  local record=$cmd
  [[ -z $stamps ]] || record+=$'\n'"# inputs:$stamps"
  if [[ -f $marker && "$(<"$marker")" == "$record" ]]; then
    note "done already, skipped: $cmd"
    return 0
  fi
  echo "+ $cmd" >&2
  [[ -z ${DRY_RUN:-} ]] || return 0
  mkdir -p "$(dirname "$marker")"
  rm -f "$marker"
  case $mode in
    ">") "$@" > "$target.part"; mv "$target.part" "$target" ;;
    "|") "$@" 2>&1 | tee -a "$target" ;;
    *) "$@" ;;
  esac
  printf '%s\n' "$record" > "$marker"
}

# --- inputs -------------------------------------------------------------------------------------------------------
require() {  # require WHAT PATH...: every path must exist
  local what=$1 p
  shift
  for p in "$@"; do
    [[ -e $p ]] || die "$what not found: $p"
  done
}

require_set() {  # require_set NAME...: options without a default that the user must give
  local name flag
  for name in "$@"; do
    flag=--${name,,}
    [[ -n ${!name} ]] || die "missing ${flag//_/-} (or $name=...); see --help"
  done
}

require_hf_t5() {  # require_hf_t5 DIR: a Hugging Face T5 directory with its SentencePiece model
  require "Hugging Face T5 directory" "$1"
  require "config.json of the Hugging Face T5 directory" "$1/config.json"
  require "spiece.model of the Hugging Face T5 directory (T5's SentencePiece model)" "$1/spiece.model"
  [[ -f $1/model.safetensors || -f $1/pytorch_model.bin ]] ||
    die "no model.safetensors or pytorch_model.bin in the Hugging Face T5 directory $1"
}

# --- device -------------------------------------------------------------------------------------------------------
gpu_count() {  # GPUs this machine's torch sees (0 on CPU)
  "$PYTHON" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0
}

device_flags() {  # fairseq-train/generate flags for the device: --cpu, or bf16 autocast on GPUs
  if (($1 == 0)); then echo --cpu; elif [[ ${BF16:-1} == 1 ]]; then echo --bf16-autocast; fi
}

# --- fine-tuning stages (gec.sh, summarization.sh, qg.sh) -----------------------------------------------------------
# prepare_parallel SPM BIN SPLIT:SRC:TGT...: SentencePiece pieces of each file, then fairseq-preprocess with the
# T5-order dictionary; BIN gets {split}.src-tgt.{src,tgt}.{bin,idx}, dict.*.txt and spiece.model.
prepare_parallel() {
  local spm=$1 bin=$2
  shift 2
  local pieces=$bin/pieces spec split src tgt
  local encode=("$PYTHON" "$RECIPES/spm_encode.py" --spm "$spm" --dict "$pieces/dict.txt")
  local preprocess=(fairseq-preprocess --user-dir "$USER_DIR" --task ssr_rewriting -s src -t tgt
    --srcdict "$pieces/dict.txt" --joined-dictionary --destdir "$bin" --workers "${WORKERS:-2}")
  for spec in "$@"; do
    IFS=: read -r split src tgt <<<"$spec"
    require "$split data" "$src" "$tgt"
    encode+=(--pair "$src" "$pieces/$split.src" "$tgt" "$pieces/$split.tgt")
    preprocess+=("--${split}pref" "$pieces/$split")
  done
  local stamps=()
  for spec in "$@"; do
    IFS=: read -r split src tgt <<<"$spec"
    stamps+=(--stamp "$src" --stamp "$tgt")
  done
  step "$bin/.encode.done" "${stamps[@]}" --stamp "$spm" "${encode[@]}"
  step "$bin/.preprocess.done" --stamp "$pieces/dict.txt" "${preprocess[@]}"
  step "$bin/.spm.done" --stamp "$spm" cp "$spm" "$bin/spiece.model"
}

# finetune BIN INIT SAVE LOG FLAGS...: fairseq-train from a Hugging Face T5 directory, in the layout FORMAT: whole
# (the paper's fine-tuning of SSR, the source as one span, `<s_1> x </s_1>` -> `<s_1> y`) or seq2seq (plain text),
# with the schedule options every fine-tuning recipe declares (LR, WARMUP, MAX_UPDATE, MAX_TOKENS, UPDATE_FREQ,
# LABEL_SMOOTHING, DROPOUT, SAVE_INTERVAL, SEED); FLAGS add the recipe's own (lengths, device).
finetune() {
  local bin=$1 init=$2 save=$3 log=$4
  shift 4
  step "$save/.train.done" "|" "$log" fairseq-train "$bin" --user-dir "$USER_DIR" --task ssr_rewriting \
    --rewrite-format "$FORMAT" --arch t5 --hf-checkpoint "$init" --criterion ssr_cross_entropy \
    --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-8 --clip-norm 1.0 \
    --lr-scheduler polynomial_decay --skip-invalid-size-inputs-valid-test \
    --lr "$LR" --warmup-updates "$WARMUP" --total-num-update "$MAX_UPDATE" --max-update "$MAX_UPDATE" \
    --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" --label-smoothing "$LABEL_SMOOTHING" \
    --dropout-rate "$DROPOUT" --save-interval-updates "$SAVE_INTERVAL" --validate-interval-updates "$SAVE_INTERVAL" \
    --seed "$SEED" --save-dir "$save" --no-epoch-checkpoints --keep-interval-updates 1 --log-format json \
    "$@" "${EXTRA_ARGS[@]}"
}

# decode BIN CHECKPOINT SOURCE OUT FLAGS...: fairseq-generate on the test split (whose text is SOURCE); OUT.gen is
# its output, OUT the plain-text hypotheses (D- lines), one for each line of SOURCE, in its order.
decode() {
  local bin=$1 ckpt=$2 source=$3 out=$4
  shift 4
  step "$out.gen.done" --stamp "$ckpt" ">" "$out.gen" fairseq-generate "$bin" --user-dir "$USER_DIR" --task ssr_rewriting \
    --rewrite-format "$FORMAT" --path "$ckpt" --gen-subset test "$@"
  step "$out.done" --stamp "$out.gen" ">" "$out" "$PYTHON" "$RECIPES/hypotheses.py" "$out.gen" --expect-lines-of "$source"
}
