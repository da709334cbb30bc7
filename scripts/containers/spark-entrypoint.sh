#!/bin/bash
# Entrypoint of the batch-spark image (Dockerfile.batch-spark).
#
# Spark on Kubernetes (the Kubeflow Spark operator) starts the image's pods with a first argument
# of `driver` or `executor` and describes the rest in environment variables that Spark sets on
# those pods (SPARK_DRIVER_BIND_ADDRESS, SPARK_EXECUTOR_*, SPARK_JAVA_OPT_n). Any other command
# runs as given, so `podman run IMAGE product-classify --engine spark ...` works as well.
set -euo pipefail

spark_classpath="${SPARK_HOME}/jars/*${SPARK_CLASSPATH:+:${SPARK_CLASSPATH}}"

start_driver() {
    # spark-submit in client mode inside the driver pod: the operator already chose the cluster.
    exec "${SPARK_HOME}/bin/spark-submit" \
        --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}" \
        --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}" \
        --deploy-mode client \
        "$@"
}

start_executor() {
    local java_options=()
    local name
    # The driver passes the executors' JVM options as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1 ...
    for name in $(compgen -e | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n); do
        java_options+=("${!name}")
    done
    exec "${JAVA_HOME}/bin/java" "${java_options[@]}" \
        "-Xms${SPARK_EXECUTOR_MEMORY}" "-Xmx${SPARK_EXECUTOR_MEMORY}" \
        -cp "${spark_classpath}" \
        org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
        --driver-url "${SPARK_DRIVER_URL}" \
        --executor-id "${SPARK_EXECUTOR_ID}" \
        --cores "${SPARK_EXECUTOR_CORES}" \
        --app-id "${SPARK_APPLICATION_ID}" \
        --hostname "${SPARK_EXECUTOR_POD_IP}" \
        --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID}" \
        --podName "${SPARK_EXECUTOR_POD_NAME}"
}

case "${1:-}" in
    driver) shift; start_driver "$@" ;;
    executor) shift; start_executor ;;
    "") echo "usage: a command (product-classify ...), or driver/executor (Spark on Kubernetes)" >&2
        exit 2 ;;
    *) exec "$@" ;;
esac
