#!/bin/sh
# One index of the fleet Job (docs/scale.md). Indexes 0..SHARDS-1 audit one shard each into
# a store of their own; index SHARDS waits for them and merges the shard stores into the
# fleet's store, one run per night named after the Job.
#
# Environment: JOB_COMPLETION_INDEX (set by Kubernetes), RUN_ID (the Job's name, the same in
# every pod of one night), SHARDS (the Job's completions minus one), and optionally DATA
# (the shared volume, /data), CONFIG (/etc/auditor/auditor.yaml), MERGE_WAIT_SECONDS (3000).
set -u
run="${RUN_ID:?RUN_ID: the Job name, from the pod label batch.kubernetes.io/job-name}"
index="${JOB_COMPLETION_INDEX:?JOB_COMPLETION_INDEX: set by Kubernetes in an Indexed Job}"
shards="${SHARDS:?SHARDS: how many shard indexes the Job has (its completions - 1)}"
data="${DATA:-/data}"
config="${CONFIG:-/etc/auditor/auditor.yaml}"
dir="$data/shards/$run"
mkdir -p "$dir"

if [ "$index" -lt "$shards" ]; then
    store="$dir/shard-$index.db"
    # a retried index starts afresh: its earlier attempt's store would hold the same run id
    rm -f "$store" "$store-wal" "$store-shm" "$dir/shard-$index.done"
    # one commit for the whole run: the first shard to start pins the commit git.revision
    # names then, every other shard (and a retried one) audits that commit
    auditor audit --config "$config" --trigger cron \
        --shard "$index/$shards" --run-id "$run" --store "$store" --pin-commit "$dir/commit"
    code=$?
    echo "$code" > "$dir/shard-$index.done"
    # 0 clean, 1 findings, 3 incomplete: recorded in the shard's store; the merge reports them
    case "$code" in
        0 | 1 | 3) exit 0 ;;
        *) exit "$code" ;;
    esac
fi

# The merge step: wait until every shard has ended, or the deadline; a shard still missing
# then leaves the fleet run incomplete, naming its clusters: never a clean fleet.
deadline=$(($(date +%s) + ${MERGE_WAIT_SECONDS:-3000}))
while [ "$(find "$dir" -name 'shard-*.done' | wc -l)" -lt "$shards" ] &&
    [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 10
done
# Only the stores of shards that ended: one still being written is never read from another
# node (SQLite's WAL needs every user of a file on one host); its shard is merged as missing.
set --
for done in "$dir"/shard-*.done; do
    [ -e "$done" ] && [ -e "${done%.done}.db" ] && set -- "$@" "${done%.done}.db"
done
if [ "$#" -eq 0 ]; then
    echo "fleet run $run: no shard of it ended within the wait, nothing to merge" >&2
    exit 3
fi
auditor store merge "$data/audit.db" "$@"
code=$?
case "$code" in
    0 | 1 | 3)
        mkdir -p "$data/reports"
        auditor report --store "$data/audit.db" --run "$run" --format html \
            --output "$data/reports/$run.html" || code=4
        # shard stores are scratch once merged; keep a week of them for a look back
        find "$data/shards" -mindepth 1 -maxdepth 1 -type d -mtime +7 -exec rm -rf {} +
        ;;
esac
exit "$code"
