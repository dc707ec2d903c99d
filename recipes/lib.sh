# Shared by the recipes (sourced, not run): options from flags or environment variables, printed commands,
# resumable steps, input checks, the device, fairseq-train's flags (train_args, for every recipe and the demo), and
# the fine-tuning stages that gec.sh, summarization.sh and qg.sh have in common (text -> binarized data,
# fairseq-train from a Hugging Face T5, fairseq-generate -> hypotheses).
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
  local name flag shown
  for name in "${OPTIONS[@]}"; do
    flag=--${name,,}
    shown=${OPTION_DEFAULT[$name]}
    [[ ! $shown =~ ^\$(DEFAULT_[A-Z_]+)$ ]] || shown=${!BASH_REMATCH[1]}  # a pipeline stage's own default
    printf '  %-36s %s\n' "${flag//_/-} (${OPTION_ENV[$name]})" "${OPTION_HELP[$name]} [${shown:-required}]"
  done
}

stage_defaults() {  # DEFAULT_<STAGE>_<FIELD> for every field of the pipeline's stage configs (their only home)
  eval "$("$PYTHON" "$REPO/preprocess/defaults.py" --prefix DEFAULT_)"
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

first_difference() {  # first_difference M2 FILE: the first line of FILE that is not the M2's S line of that number
  # (runs of spaces aside), or the line after the shorter one; nothing when they agree
  awk 'NR == FNR { if (sub(/^S /, "")) { $1 = $1; s[++n] = $0 } next }
       !bad { $1 = $1; if (FNR > n || $0 != s[FNR]) bad = FNR }
       END { if (!bad && FNR != n) bad = (FNR < n ? FNR : n) + 1; if (bad) print bad }' "$1" "$2"
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

# train_args OUT DATA SAVE KEY=VALUE...: fairseq-train's arguments for the ssr_rewriting task, into the array named
# OUT: the optimizer and schedule every recipe shares (Adam, linear warm-up, then linear decay to 0 at max_update),
# interval checkpoints and validation in SAVE, JSON logs, the device. The one place a recipe's training is spelled.
#   required: format (marked|whole|seq2seq), lr, warmup, max_update, seed, save_interval (0: only at the end)
#   init=DIR          start from this Hugging Face T5 (its shape and weights); without it, add --arch flags yourself
#   batch_size=N | max_tokens=N   sequences or tokens per GPU per step
#   update_freq (1), label_smoothing (0), dropout (the model's), weight_decay (0), clip_norm (1.0, 0 = none),
#   keep (1: interval checkpoints kept), log_interval (100), ngpu (0: --cpu; else bf16 autocast unless BF16=0)
#   metric (none)     f0.5 or rouge: each validation also decodes the validation set and scores it (--eval-metric),
#                     and checkpoint_best.pt is the best by it instead of by loss; with eval_m2 (f0.5's gold .m2),
#                     eval_max_sentences (0: all) and the decoding settings eval_beam, eval_lenpen, eval_max_len_a,
#                     eval_max_len_b, eval_min_len, eval_no_repeat_ngram_size (the test decoding's, as a rule)
EVAL_SETTINGS=(eval_m2 eval_max_sentences eval_beam eval_lenpen eval_max_len_a eval_max_len_b eval_min_len
  eval_no_repeat_ngram_size)
train_args() {
  local -n _args=$1
  local data=$2 save=$3 kv key
  shift 3
  local -A o=([update_freq]=1 [label_smoothing]=0 [weight_decay]=0 [clip_norm]=1.0 [keep]=1 [log_interval]=100
    [ngpu]=0 [init]= [batch_size]= [max_tokens]= [dropout]= [format]= [lr]= [warmup]= [max_update]= [seed]=
    [save_interval]= [metric]=none)
  for key in "${EVAL_SETTINGS[@]}"; do o[$key]=; done
  for kv in "$@"; do
    key=${kv%%=*}
    [[ $kv == *=* && -v "o[$key]" ]] || die "train_args: unknown setting '$kv'"
    o[$key]=${kv#*=}
  done
  for key in format lr warmup max_update seed save_interval; do
    [[ -n ${o[$key]} ]] || die "train_args: $key= is required"
  done
  _args=("$data" --user-dir "$USER_DIR" --task ssr_rewriting --rewrite-format "${o[format]}"
    --criterion ssr_cross_entropy --label-smoothing "${o[label_smoothing]}"
    --optimizer adam --adam-betas "(0.9, 0.999)" --adam-eps 1e-8 --weight-decay "${o[weight_decay]}"
    --clip-norm "${o[clip_norm]}" --lr "${o[lr]}" --lr-scheduler polynomial_decay --warmup-updates "${o[warmup]}"
    --total-num-update "${o[max_update]}" --max-update "${o[max_update]}" --update-freq "${o[update_freq]}"
    --seed "${o[seed]}" --save-dir "$save" --save-interval-updates "${o[save_interval]}"
    --validate-interval-updates "${o[save_interval]}" --keep-interval-updates "${o[keep]}" --no-epoch-checkpoints
    --skip-invalid-size-inputs-valid-test --log-format json --log-interval "${o[log_interval]}")
  [[ -z ${o[init]} ]] || _args+=(--arch t5 --hf-checkpoint "${o[init]}")
  [[ -z ${o[dropout]} ]] || _args+=(--dropout-rate "${o[dropout]}")
  [[ -z ${o[batch_size]} ]] || _args+=(--batch-size "${o[batch_size]}")
  [[ -z ${o[max_tokens]} ]] || _args+=(--max-tokens "${o[max_tokens]}")
  if [[ ${o[metric]} != none ]]; then
    _args+=(--eval-metric "${o[metric]}" --best-checkpoint-metric "${o[metric]}" --maximize-best-checkpoint-metric)
    for key in "${EVAL_SETTINGS[@]}"; do
      [[ -z ${o[$key]} ]] || _args+=("--${key//_/-}" "${o[$key]}")
    done
  fi
  _args+=($(device_flags "${o[ngpu]}"))
}

# finetune FORMAT BIN INIT SAVE LOG KEY=VALUE... [-- FLAGS...]: fairseq-train (train_args' settings) from a Hugging
# Face T5 directory as a resumable step logging to LOG; FLAGS are more fairseq-train flags (lengths, the user's).
finetune() {
  local format=$1 bin=$2 init=$3 save=$4 log=$5 args=()
  shift 5
  local settings=()
  while (($#)) && [[ $1 != -- ]]; do settings+=("$1"); shift; done
  [[ ${1:-} != -- ]] || shift
  train_args args "$bin" "$save" format="$format" init="$init" "${settings[@]}"
  step "$save/.train.done" "|" "$log" fairseq-train "${args[@]}" "$@"
}

# decode FORMAT BIN CHECKPOINT SOURCE OUT FLAGS...: fairseq-generate on the test split (whose text is SOURCE); OUT.gen
# is its output, OUT the plain-text hypotheses (D- lines), one for each line of SOURCE, in its order.
decode() {
  local format=$1 bin=$2 ckpt=$3 source=$4 out=$5
  shift 5
  step "$out.gen.done" --stamp "$ckpt" ">" "$out.gen" fairseq-generate "$bin" --user-dir "$USER_DIR" --task ssr_rewriting \
    --rewrite-format "$format" --path "$ckpt" --gen-subset test "$@"
  step "$out.done" --stamp "$out.gen" ">" "$out" "$PYTHON" "$RECIPES/hypotheses.py" "$out.gen" --expect-lines-of "$source"
}
