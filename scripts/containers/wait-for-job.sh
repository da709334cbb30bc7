#!/usr/bin/env bash
# Wait until a Kubernetes Job completes or fails, then print the summary block of its log
# (from the line "training summary" or "batch scoring summary" on). Exit 0 on success, 1 on failure or timeout.
#
#   scripts/containers/wait-for-job.sh NAMESPACE JOB [TIMEOUT_SECONDS]   (KUBECTL="kubectl --context x")
set -euo pipefail

namespace=$1
job=$2
timeout=${3:-3600}
kubectl=(${KUBECTL:-kubectl} --namespace "$namespace")
deadline=$((SECONDS + timeout))

state=""
while ((SECONDS < deadline)); do
    state=$("${kubectl[@]}" get job "$job" \
        -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
    case " $state " in
        *" Complete "*) break ;;
        *" Failed "*) break ;;
    esac
    sleep 5
done

case " $state " in
    *" Complete "*)
        echo "job/$job completed"
        # The pod that succeeded: after a retry, `logs job/...` may pick a failed one.
        pod=$("${kubectl[@]}" get pods --selector "job-name=$job" \
            --field-selector status.phase=Succeeded --output name | head -n 1)
        "${kubectl[@]}" logs "${pod:-job/$job}" --tail=-1 | sed -n '/^\(training\|batch scoring\) summary/,$p'
        ;;
    *" Failed "*)
        echo "job/$job failed: $("${kubectl[@]}" get job "$job" \
            -o jsonpath='{.status.conditions[?(@.type=="Failed")].message}')" >&2
        "${kubectl[@]}" logs "job/$job" --tail=40 >&2 || true
        exit 1
        ;;
    *)
        echo "job/$job did not finish within ${timeout}s" >&2
        exit 1
        ;;
esac
