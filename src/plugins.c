/* The plugin registry: every input, operator and output millrace ships, in one place.
 *
 * To add a plugin: write src/inputs/NAME.c (or operators/outputs) defining
 * `const struct mr_plugin mr_input_NAME = {...}`, declare it below and add it to its list,
 * keeping each list sorted by name (docs/CONFIG.md and "available: ..." hints follow this
 * order). Then run `make docs`. */
#include <stdio.h>
#include <string.h>

#include "millrace/plugin.h"

extern const struct mr_plugin mr_input_file;
extern const struct mr_plugin mr_input_http_listener;
extern const struct mr_plugin mr_input_modbus;
extern const struct mr_plugin mr_input_mqtt;
extern const struct mr_plugin mr_input_postgres_cdc;
extern const struct mr_plugin mr_input_receive;
extern const struct mr_plugin mr_input_sim;
extern const struct mr_plugin mr_input_stdin;
extern const struct mr_plugin mr_operator_deadband;
extern const struct mr_plugin mr_operator_detector;
extern const struct mr_plugin mr_operator_downsample;
extern const struct mr_plugin mr_operator_energy;
extern const struct mr_plugin mr_operator_filter;
extern const struct mr_plugin mr_operator_oee;
extern const struct mr_plugin mr_operator_rename;
extern const struct mr_plugin mr_operator_report_by_exception;
extern const struct mr_plugin mr_operator_route;
extern const struct mr_plugin mr_operator_rul;
extern const struct mr_plugin mr_operator_scale;
extern const struct mr_plugin mr_operator_spc;
extern const struct mr_plugin mr_operator_supply;
extern const struct mr_plugin mr_operator_vibration;
extern const struct mr_plugin mr_operator_window;
extern const struct mr_plugin mr_output_file;
extern const struct mr_plugin mr_output_forward;
extern const struct mr_plugin mr_output_http;
extern const struct mr_plugin mr_output_influxdb;
extern const struct mr_plugin mr_output_kafka;
extern const struct mr_plugin mr_output_modbus_write;
extern const struct mr_plugin mr_output_mqtt;
extern const struct mr_plugin mr_output_postgresql;
extern const struct mr_plugin mr_output_prometheus_client;
extern const struct mr_plugin mr_output_stdout;
extern const struct mr_plugin mr_output_summary;

static const struct mr_plugin *const inputs[] = {
    &mr_input_file, &mr_input_http_listener, &mr_input_modbus,
    &mr_input_mqtt, &mr_input_postgres_cdc,  &mr_input_receive,
    &mr_input_sim,  &mr_input_stdin,         NULL,
};

static const struct mr_plugin *const operators[] = {
    &mr_operator_deadband,   &mr_operator_detector,
    &mr_operator_downsample, &mr_operator_energy,
    &mr_operator_filter,     &mr_operator_oee,
    &mr_operator_rename,     &mr_operator_report_by_exception,
    &mr_operator_route,      &mr_operator_rul,
    &mr_operator_scale,      &mr_operator_spc,
    &mr_operator_supply,     &mr_operator_vibration,
    &mr_operator_window,     NULL,
};

static const struct mr_plugin *const outputs[] = {
    &mr_output_file,     &mr_output_forward,    &mr_output_http,
    &mr_output_influxdb, &mr_output_kafka,      &mr_output_modbus_write,
    &mr_output_mqtt,     &mr_output_postgresql, &mr_output_prometheus_client,
    &mr_output_stdout,   &mr_output_summary,    NULL,
};

static const struct mr_plugin *const *list_of(enum mr_plugin_kind kind)
{
    switch (kind) {
    case MR_PLUGIN_INPUT:
        return inputs;
    case MR_PLUGIN_OPERATOR:
        return operators;
    case MR_PLUGIN_OUTPUT:
        return outputs;
    }
    return NULL;
}

const struct mr_plugin *mr_plugin_find(enum mr_plugin_kind kind, const char *name)
{
    const struct mr_plugin *const *list = list_of(kind);
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcmp(list[i]->name, name) == 0) {
            return list[i];
        }
    }
    return NULL;
}

const struct mr_plugin *mr_plugin_at(enum mr_plugin_kind kind, size_t i)
{
    const struct mr_plugin *const *list = list_of(kind);
    for (size_t j = 0; list != NULL && list[j] != NULL; j++) {
        if (j == i) {
            return list[j];
        }
    }
    return NULL;
}

const char *mr_plugin_kind_name(enum mr_plugin_kind kind)
{
    switch (kind) {
    case MR_PLUGIN_INPUT:
        return "input";
    case MR_PLUGIN_OPERATOR:
        return "operator";
    case MR_PLUGIN_OUTPUT:
        return "output";
    }
    return "plugin";
}

int mr_plugin_counters_register(struct mr_metrics *metrics, const struct mr_plugin *plugin,
                                const char *instance, struct mr_plugin_counters *out)
{
    char inst[256];
    char labels[320];
    struct mr_plugin_counters c;
    if (mr_metrics_label_escape(instance, inst, sizeof(inst)) < 0) {
        return MR_ETOOBIG;
    }
    /* Plugin names are our own identifiers: nothing to escape. */
    int w = snprintf(labels, sizeof(labels), "instance=\"%s\",plugin=\"%s\"", inst, plugin->name);
    if (w < 0 || (size_t)w >= sizeof(labels)) {
        return MR_ETOOBIG;
    }
    int rc = mr_metrics_counter(metrics, "millrace_records_in_total",
                                "Records a plugin instance received.", labels, &c.records_in);
    if (rc == 0) {
        rc = mr_metrics_counter(metrics, "millrace_records_out_total",
                                "Records a plugin instance passed on or delivered.", labels,
                                &c.records_out);
    }
    if (rc == 0) {
        rc = mr_metrics_counter(metrics, "millrace_errors_total",
                                "Records or operations a plugin instance failed on.", labels,
                                &c.errors);
    }
    if (rc != 0) {
        return rc;
    }
    *out = c;
    return 0;
}
