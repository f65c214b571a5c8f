// The lab data source's whole frontend: no build step. Grafana loads this
// AMD module with SystemJS and hands it its shared @grafana/data,
// @grafana/runtime and react. Queries run in the Go backend (labsource);
// the editors below only edit the JSON query model documented in README.md.
define(["@grafana/data", "@grafana/runtime", "react"], function (data, runtime, React) {
  "use strict";
  var h = React.createElement;
  var queryTypes = ["faults", "experiments", "probes", "recovery", "audit", "latency", "live"];

  class LabDataSource extends runtime.DataSourceWithBackend {
    constructor(settings) {
      super(settings);
      // Annotations run the same queries (faults) through the backend:
      // frames with time, timeEnd, title, text and tags.
      this.annotations = {};
    }
    getDefaultQuery() {
      return { queryType: "experiments" };
    }
  }

  function row(label, input) {
    return h("div", { className: "gf-form", style: { marginBottom: 4 } },
      h("label", { className: "gf-form-label width-10" }, label), input);
  }

  function text(value, placeholder, onChange) {
    return h("input", { className: "gf-form-input width-30", value: value || "", placeholder: placeholder,
      onChange: function (e) { onChange(e.target.value); } });
  }

  function ConfigEditor(props) {
    var jd = props.options.jsonData || {};
    function set(key) {
      return function (v) {
        var next = Object.assign({}, jd);
        next[key] = v;
        props.onOptionsChange(Object.assign({}, props.options, { jsonData: next }));
      };
    }
    return h("div", null,
      row("State dir", text(jd.stateDir, "/path/to/.lab (as the Grafana server sees it)", set("stateDir"))),
      row("Control API", text(jd.controlUrl, "http://127.0.0.1:7700 (empty: from <state dir>/lab.json)", set("controlUrl"))));
  }

  function QueryEditor(props) {
    var q = props.query;
    function set(key) {
      return function (v) {
        var next = Object.assign({}, q);
        if (v === "") { delete next[key]; } else { next[key] = v; }
        props.onChange(next);
        props.onRunQuery();
      };
    }
    return h("div", null,
      row("Query type", h("select", { className: "gf-form-input width-30", value: q.queryType || "experiments",
        onChange: function (e) { set("queryType")(e.target.value); } },
        queryTypes.map(function (t) { return h("option", { key: t, value: t }, t); }))),
      row("Run", text(q.run, "all runs in the time range", set("run"))),
      row("Variant", text(q.variant, "all variants", set("variant"))),
      q.queryType === "latency" ? row("Requests", text(q.requests, "all | reads | writes", set("requests"))) : null);
  }

  return {
    plugin: new data.DataSourcePlugin(LabDataSource).setConfigEditor(ConfigEditor).setQueryEditor(QueryEditor),
  };
});
