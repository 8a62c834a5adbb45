//! The stack's CloudWatch dashboard (`OpsDashboard` in sam/template.yaml), generated from ops-core's
//! metric catalogue (`ops_core::metrics`) and the functions the template names. `make dashboard`
//! writes it into the template; the tests below fail when the template's copy is out of date, or
//! when a widget names a metric no function emits.
//!
//! Widget JSON follows the dashboard body reference:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html>.

use std::path::PathBuf;

use ops_core::metrics::{
    Metric, CERT_DAYS_LEFT, CHANGE_COUNTS, DEPLOYMENTS, HEALTH_NAMESPACE, SCALINGS, SWAPS,
    TARGETS_CHECKED, TARGETS_DOWN, UP,
};
use serde_json::{json, Value};

use crate::emulator::workspace_root;

/// The metrics Lambda publishes for every function that the dashboard shows (namespace
/// `AWS/Lambda`, dimension `FunctionName`):
/// <https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html>.
pub const LAMBDA_METRICS: &[(&str, &str)] = &[
    ("Invocations", "Sum"),
    ("Errors", "Sum"),
    ("Throttles", "Sum"),
    ("Duration", "p99"),
];

/// The line of the template that opens the body; the body is the indented block under it.
const BODY_KEY: &str = "      DashboardBody: !Sub |";
const BODY_INDENT: &str = "        ";
/// How the template names each function: `FunctionName: !Sub "${AWS::StackName}-<name>"`.
const FUNCTION_NAME_KEY: &str = "FunctionName: !Sub \"${AWS::StackName}-";
/// How the template sets the health monitor's namespace: `HEALTH_METRICS_NAMESPACE: !Sub "..."`.
const HEALTH_NAMESPACE_KEY: &str = "HEALTH_METRICS_NAMESPACE: !Sub \"";
/// How many targets a per-target graph shows: the lowest (a down target, a certificate running
/// out). A graph of hundreds is unreadable.
const TARGETS_SHOWN: u32 = 20;
/// The time range of the per-day graphs, whatever the dashboard's.
const DAYS_SHOWN: &str = "-P14D";

/// What the dashboard is generated from, read from the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// The functions the template creates, by the name after `<stack>-`, in template order.
    pub functions: Vec<String>,
    /// The namespace the template gives the health monitor's metrics (`${AWS::StackName}` in it
    /// is filled in by `!Sub`), or the monitor's default when the template sets none.
    pub health_namespace: String,
}

impl Stack {
    /// The facts of `template`.
    pub fn of(template: &str) -> Stack {
        let health_namespace = template
            .lines()
            .find_map(|line| line.trim().strip_prefix(HEALTH_NAMESPACE_KEY))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or(HEALTH_NAMESPACE)
            .to_string();
        Stack {
            functions: function_names(template),
            health_namespace,
        }
    }

    /// The namespace `metric` is emitted in by this stack.
    pub fn namespace_of(&self, metric: &Metric) -> String {
        if metric.namespace == HEALTH_NAMESPACE {
            self.health_namespace.clone()
        } else {
            metric.namespace.to_string()
        }
    }
}

/// sam/template.yaml.
pub fn template_path() -> PathBuf {
    workspace_root().join("sam").join("template.yaml")
}

/// The functions the template creates, by the name after `<stack>-`, in template order.
pub fn function_names(template: &str) -> Vec<String> {
    template
        .lines()
        .filter_map(|line| line.trim().strip_prefix(FUNCTION_NAME_KEY))
        .filter_map(|rest| rest.strip_suffix('"'))
        .map(str::to_string)
        .collect()
}

/// The deployed name of `function` as the body writes it (`!Sub` fills in the stack's name).
fn deployed(function: &str) -> String {
    format!("${{AWS::StackName}}-{function}")
}

fn graph(title: &str, x: u32, y: u32, width: u32, properties: Value) -> Value {
    let mut properties = properties;
    properties["title"] = json!(title);
    properties["region"] = json!("${AWS::Region}");
    if properties.get("view").is_none() {
        properties["view"] = json!("timeSeries");
    }
    json!({"type": "metric", "x": x, "y": y, "width": width, "height": 6, "properties": properties})
}

/// One graph line per outcome of a change metric, summed per day.
fn changes_per_day(metric: Metric, function: &str, x: u32) -> Value {
    let lines: Vec<Value> = CHANGE_COUNTS
        .iter()
        .filter(|count| count.metric == metric)
        .map(|count| {
            json!([
                metric.namespace,
                metric.name,
                "FunctionName",
                deployed(function),
                "Outcome",
                count.outcome,
                {"label": count.outcome}
            ])
        })
        .collect();
    graph(
        &format!("{} per day ({function})", metric.name),
        x,
        2,
        8,
        json!({"metrics": lines, "stat": "Sum", "period": 86_400, "stacked": true, "start": DAYS_SHOWN}),
    )
}

/// The lowest [`TARGETS_SHOWN`] targets by the minimum of a per-target health metric: a CloudWatch
/// Metrics Insights query, which sorts every target it matches before it limits (a `SEARCH` returns
/// at most 500 series, and a sort of those would miss the rest of a larger fleet):
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-querylanguage.html>.
fn per_target(stack: &Stack, metric: Metric, period: u32) -> Value {
    let query = format!(
        "SELECT MIN({}) FROM SCHEMA(\"{}\", Target) GROUP BY Target ORDER BY MIN() ASC LIMIT {TARGETS_SHOWN}",
        metric.name,
        stack.namespace_of(&metric)
    );
    json!({"metrics": [[{"expression": query, "id": "targets", "label": "", "period": period}]], "period": period})
}

/// The dashboard body for `stack`.
pub fn body(stack: &Stack) -> Value {
    let functions = &stack.functions;
    let mut widgets = vec![json!({
        "type": "text", "x": 0, "y": 0, "width": 24, "height": 2,
        "properties": {"markdown": "## ${AWS::StackName}: what the ops functions did\nChanges per day (last 14 days) count the alerts that ended a deployment or a swap, or told of a scaling (their detail and undo are in the ops channel). Health is per minute; `Up` is 1 when a target's check passed; the per-target graphs show the 20 lowest of all targets."}
    })];
    widgets.push(changes_per_day(DEPLOYMENTS, "deploy-trigger", 0));
    widgets.push(changes_per_day(SWAPS, "blue-green-swapper", 8));
    widgets.push(changes_per_day(SCALINGS, "cpu-alarm-scaler", 16));
    for (i, (name, stat)) in LAMBDA_METRICS.iter().enumerate() {
        let lines: Vec<Value> = functions
            .iter()
            .map(|f| json!(["AWS/Lambda", name, "FunctionName", deployed(f), {"label": f}]))
            .collect();
        let x = (i as u32 % 2) * 12;
        let y = 8 + (i as u32 / 2) * 6;
        widgets.push(graph(
            &format!("Lambda {name} ({stat}, 5 min)"),
            x,
            y,
            12,
            json!({"metrics": lines, "stat": stat, "period": 300}),
        ));
    }
    let health_row = 8 + LAMBDA_METRICS.len().div_ceil(2) as u32 * 6;
    let health = stack.health_namespace.as_str();
    widgets.push(graph(
        "Up per target (1 = check passed; lowest 20)",
        0,
        health_row,
        8,
        per_target(stack, UP, 60),
    ));
    widgets.push(graph(
        "Targets down / checked per run",
        8,
        health_row,
        8,
        json!({"metrics": [
            [health, TARGETS_DOWN.name, {"label": "down"}],
            [health, TARGETS_CHECKED.name, {"label": "checked"}]
        ], "stat": "Maximum", "period": 60}),
    ));
    widgets.push(graph(
        "Certificate days left per target (lowest 20)",
        16,
        health_row,
        8,
        per_target(stack, CERT_DAYS_LEFT, 3600),
    ));
    // Each graph's own period holds (a per-day graph stays per day whatever the time range).
    json!({"periodOverride": "inherit", "widgets": widgets})
}

/// The body as the template holds it: JSON, a value on one line where it fits in 130 columns, and
/// each metric line on one line.
pub fn body_text(stack: &Stack) -> String {
    let mut text = String::new();
    write_fitted(&body(stack), 0, 0, &mut text);
    text
}

const COLUMNS: usize = 130;

/// Write `value` starting at `column` of a line indented by `indent`.
fn write_fitted(value: &Value, indent: usize, column: usize, out: &mut String) {
    let compact = value.to_string();
    // A metric line (an array of scalars and flat objects) always on one line, however long: one
    // graph line each.
    let flat = |item: &Value| match item {
        Value::Array(_) => false,
        Value::Object(map) => map.values().all(|v| !v.is_array() && !v.is_object()),
        _ => true,
    };
    let metric_line = value.as_array().is_some_and(|items| items.iter().all(flat));
    // One column kept for the comma that may follow.
    if metric_line || column + compact.len() < COLUMNS {
        out.push_str(&compact);
        return;
    }
    let inner = " ".repeat(indent + 2);
    let (open, close, items): (char, char, Vec<(Option<&String>, &Value)>) = match value {
        Value::Object(map) => ('{', '}', map.iter().map(|(k, v)| (Some(k), v)).collect()),
        Value::Array(items) => ('[', ']', items.iter().map(|v| (None, v)).collect()),
        _ => {
            out.push_str(&compact);
            return;
        }
    };
    out.push(open);
    for (i, (key, item)) in items.iter().enumerate() {
        out.push('\n');
        out.push_str(&inner);
        let mut column = indent + 2;
        if let Some(key) = key {
            let key = format!("{}: ", Value::String((*key).clone()));
            column += key.len();
            out.push_str(&key);
        }
        write_fitted(item, indent + 2, column, out);
        if i + 1 < items.len() {
            out.push(',');
        }
    }
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push(close);
}

/// The body the template holds now, if it has one.
pub fn body_in(template: &str) -> Option<String> {
    let mut lines = template.lines().skip_while(|line| *line != BODY_KEY);
    lines.next()?;
    let block: Vec<&str> = lines
        .take_while(|line| line.starts_with(BODY_INDENT) || line.is_empty())
        .map(|line| line.strip_prefix(BODY_INDENT).unwrap_or(line))
        .collect();
    Some(block.join("\n").trim_end().to_string())
}

/// `template` with its body replaced by `body`.
pub fn with_body(template: &str, body: &str) -> Result<String, String> {
    let lines: Vec<&str> = template.lines().collect();
    let start = lines
        .iter()
        .position(|line| *line == BODY_KEY)
        .ok_or_else(|| format!("the template has no line `{BODY_KEY}`"))?;
    let end = lines[start + 1..]
        .iter()
        .position(|line| !(line.starts_with(BODY_INDENT) || line.is_empty()))
        .map_or(lines.len(), |n| start + 1 + n);
    let mut out: Vec<String> = lines[..=start].iter().map(|l| l.to_string()).collect();
    out.extend(body.lines().map(|line| format!("{BODY_INDENT}{line}")));
    out.push(String::new());
    out.extend(lines[end..].iter().map(|l| l.to_string()));
    Ok(out.join("\n") + "\n")
}

/// A metric as a widget names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedMetric {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its dimensions as (name, value); a query's dimensions have the value `*`.
    pub dimensions: Vec<(String, String)>,
}

impl NamedMetric {
    /// The value of dimension `name`, if the metric has it.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every metric a widget names, read from its metric arrays and from its Metrics Insights queries.
pub fn named_metrics(body: &Value) -> Vec<NamedMetric> {
    let mut named = Vec::new();
    let widgets = body["widgets"].as_array().cloned().unwrap_or_default();
    for widget in widgets {
        let lines = widget["properties"]["metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for line in lines {
            let parts = line.as_array().cloned().unwrap_or_default();
            if let Some(expression) = parts.first().and_then(|p| p["expression"].as_str()) {
                named.extend(queried_metric(expression));
                continue;
            }
            let texts: Vec<String> = parts
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            if let [namespace, name, dims @ ..] = texts.as_slice() {
                named.push(NamedMetric {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    dimensions: dims
                        .chunks(2)
                        .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default()))
                        .collect(),
                });
            }
        }
    }
    named
}

/// The metric a Metrics Insights query `SELECT FN(name) FROM SCHEMA("namespace", dims...) ...`
/// reads (the namespace may hold `${...}`).
fn queried_metric(expression: &str) -> Option<NamedMetric> {
    let selected = expression.strip_prefix("SELECT ")?.split_once('(')?.1;
    let name = selected.split_once(')')?.0.to_string();
    let schema = expression.split_once("FROM SCHEMA(\"")?.1;
    let (namespace, rest) = schema.split_once('"')?;
    let dimensions = rest
        .split_once(')')?
        .0
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| (d.to_string(), "*".to_string()))
        .collect();
    Some(NamedMetric {
        namespace: namespace.to_string(),
        name,
        dimensions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::metrics::CATALOGUE;

    fn template() -> String {
        std::fs::read_to_string(template_path()).expect("read sam/template.yaml")
    }

    #[test]
    fn the_templates_dashboard_is_the_generated_one() {
        let template = template();
        let stack = Stack::of(&template);
        assert!(stack.functions.len() >= 6, "functions: {stack:?}");
        assert_eq!(
            stack.health_namespace,
            format!("{HEALTH_NAMESPACE}/${{AWS::StackName}}"),
            "each stack's health metrics in a namespace of its own"
        );
        let expected = body_text(&stack);
        let found = body_in(&template).expect("the template has an OpsDashboard DashboardBody");
        assert!(
            found == expected,
            "sam/template.yaml's dashboard is out of date: run `make dashboard`"
        );
        assert_eq!(with_body(&template, &expected).unwrap(), template);
    }

    #[test]
    fn every_widget_names_a_metric_some_function_emits_or_lambda_publishes() {
        let stack = Stack::of(&template());
        let functions = &stack.functions;
        let body = body(&stack);
        let named = named_metrics(&body);
        assert!(named.len() > 20, "{named:?}");
        for metric in &named {
            let (namespace, name) = (&metric.namespace, &metric.name);
            if let Some(function) = metric.dimension("FunctionName") {
                let function = function.trim_start_matches("${AWS::StackName}-");
                assert!(
                    functions.iter().any(|f| f == function),
                    "{namespace} {name} names function {function}, which the template does not create"
                );
            }
            if namespace == "AWS/Lambda" {
                assert!(
                    LAMBDA_METRICS.iter().any(|(m, _)| m == name),
                    "{name} is not a Lambda metric the dashboard means to show"
                );
                continue;
            }
            let emitted = CATALOGUE
                .iter()
                .find(|m| stack.namespace_of(m) == *namespace && m.name == *name)
                .unwrap_or_else(|| panic!("{namespace} {name}: no function emits it"));
            let dimensions: Vec<&str> = metric.dimensions.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                dimensions, emitted.dimensions,
                "{namespace} {name}: dimensions"
            );
            if let Some(outcome) = metric.dimension("Outcome") {
                assert!(
                    CHANGE_COUNTS
                        .iter()
                        .any(|c| c.metric == *emitted && c.outcome == outcome),
                    "{name} with Outcome {outcome} is never counted"
                );
            }
        }
        for count in CHANGE_COUNTS {
            assert!(
                named.iter().any(|m| m.name == count.metric.name
                    && m.dimension("Outcome") == Some(count.outcome)),
                "the dashboard does not show {} {}",
                count.metric.name,
                count.outcome
            );
        }
        for (metric, _) in LAMBDA_METRICS {
            for function in functions {
                assert!(
                    named.iter().any(|m| m.namespace == "AWS/Lambda"
                        && m.name == *metric
                        && m.dimension("FunctionName") == Some(deployed(function).as_str())),
                    "no {metric} of {function}"
                );
            }
        }
    }

    #[test]
    fn a_query_names_its_namespace_dimensions_and_metric() {
        assert_eq!(
            queried_metric(
                "SELECT MIN(Up) FROM SCHEMA(\"Ops/LegacyHealth/${AWS::StackName}\", Target) GROUP BY Target ORDER BY MIN() ASC LIMIT 20"
            ),
            Some(NamedMetric {
                namespace: "Ops/LegacyHealth/${AWS::StackName}".to_string(),
                name: "Up".to_string(),
                dimensions: vec![("Target".to_string(), "*".to_string())]
            })
        );
        assert_eq!(queried_metric("m1 * 2"), None);
    }

    #[test]
    fn the_body_text_is_the_body_and_fits_in_its_columns_where_it_can() {
        let stack = Stack {
            functions: vec!["deploy-trigger".to_string(), "cpu-alarm-scaler".to_string()],
            health_namespace: HEALTH_NAMESPACE.to_string(),
        };
        let text = body_text(&stack);
        let parsed: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(parsed, body(&stack));
        for line in text.lines().filter(|l| l.len() > COLUMNS) {
            let line = line.trim_start();
            assert!(
                line.starts_with("\"markdown\"") || line.starts_with('['),
                "only the markdown and metric lines may be long: {line}"
            );
        }
    }

    #[test]
    fn the_health_namespace_is_the_templates_setting_or_the_monitors_default() {
        let set = "  Environment:\n    Variables:\n      HEALTH_METRICS_NAMESPACE: !Sub \"Ops/LegacyHealth/${AWS::StackName}\"\n      FunctionName: !Sub \"${AWS::StackName}-legacy-health-monitor\"\n";
        let stack = Stack::of(set);
        assert_eq!(stack.health_namespace, "Ops/LegacyHealth/${AWS::StackName}");
        assert_eq!(stack.functions, ["legacy-health-monitor"]);
        assert_eq!(
            stack.namespace_of(&UP),
            "Ops/LegacyHealth/${AWS::StackName}"
        );
        assert_eq!(stack.namespace_of(&DEPLOYMENTS), "Ops/Changes");
        assert_eq!(Stack::of("a: 1\n").health_namespace, HEALTH_NAMESPACE);
    }

    #[test]
    fn writing_the_body_replaces_only_the_block_under_its_key() {
        let template = format!("a:\n{BODY_KEY}\n{BODY_INDENT}{{\n{BODY_INDENT}}}\n\nb: 1\n");
        let written = with_body(&template, "{\n  \"widgets\": []\n}").unwrap();
        assert_eq!(
            written,
            format!("a:\n{BODY_KEY}\n{BODY_INDENT}{{\n{BODY_INDENT}  \"widgets\": []\n{BODY_INDENT}}}\n\nb: 1\n")
        );
        assert_eq!(
            body_in(&written).as_deref(),
            Some("{\n  \"widgets\": []\n}")
        );
        assert!(with_body("a: 1\n", "{}").is_err());
    }
}
