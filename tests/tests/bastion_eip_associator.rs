//! bastion-eip-associator end to end against the emulator: launches held at the lifecycle hook,
//! races for the last address and for a takeover, takeovers, launches whose instance or lifecycle
//! action is already over, reconcile, duplicates, faults, bad input and `doctor`.

use aws_sdk_ec2::types::{InstanceType, Tag};
use bastion_eip_associator::config::AssociatorConfig;
use bastion_eip_associator::handler::{function_handler, Deps};
use ops_core::alert::{MemoryAlerts, Severity};
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::config::Env;
use ops_core::Error;
use ops_e2e::events::scheduled;
use ops_e2e::fixtures;
use ops_e2e::redeliver::until_settled;
use ops_e2e::Emulator;
use serde_json::{json, Value};

struct World {
    emulator: Emulator,
    deps: Deps<MemoryAlerts>,
    /// The instance the group started with.
    first: String,
}

impl World {
    /// Group `bastion` (desired 1, max 3, pool tag `bastion`, launch hook `bastion-launch`) and
    /// `addresses` Elastic IPs in pool `bastion`.
    async fn new(addresses: usize) -> World {
        let emulator = Emulator::start();
        let sdk = emulator.sdk_config().await;
        let env = Env::from_pairs([
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:ops-alerts",
            ),
            ("BASTION_GROUPS", "bastion"),
            ("ASSOCIATE_RETRY_DELAY_MS", "0"),
        ]);
        let deps = Deps {
            ec2: Ec2::new(&sdk),
            groups: AutoScalingGroups::new(&sdk),
            iam: IamSimulator::new(&sdk),
            alerts: MemoryAlerts::default(),
            config: AssociatorConfig::from_env(&env).expect("config"),
        };
        fixtures::group(deps.groups.client(), "bastion", (1, 1, 3), Some("bastion")).await;
        fixtures::pool_addresses(deps.ec2.client(), "bastion", addresses).await;
        let first = deps
            .groups
            .describe("bastion")
            .await
            .unwrap()
            .instances
            .keys()
            .next()
            .unwrap()
            .clone();
        World {
            emulator,
            deps,
            first,
        }
    }

    /// Scale the group out by one; returns (instance, lifecycle event).
    fn launch(&self) -> (String, Value) {
        let launched = self
            .emulator
            .control(
                "POST",
                "/_ops/autoscaling/launch",
                Some(json!({"group": "bastion"})),
            )
            .expect("launch");
        (
            launched["instance_id"].as_str().unwrap().to_string(),
            launched["event"].clone(),
        )
    }

    async fn handle(&self, payload: Value) -> Result<Value, Error> {
        function_handler(payload, &self.deps).await
    }

    /// The addresses of pool `bastion`, as EC2 describes them now.
    async fn pool(&self) -> Vec<ops_core::aws::ec2::AddressState> {
        self.deps
            .ec2
            .addresses_tagged("ops:eip-pool", Some("bastion"))
            .await
            .unwrap()
    }

    /// Who holds each pool address.
    async fn holders(&self) -> Vec<Option<String>> {
        self.pool()
            .await
            .into_iter()
            .map(|a| a.instance_id)
            .collect()
    }

    /// The `ops:eip-freeing` marks on pool addresses.
    async fn marks(&self) -> Vec<String> {
        self.pool()
            .await
            .into_iter()
            .filter_map(|a| a.tags.get("ops:eip-freeing").cloned())
            .collect()
    }

    async fn give(&self, instance: &str) {
        let address = &self.pool().await[0];
        assert!(self
            .deps
            .ec2
            .associate(&address.allocation_id, instance, false)
            .await
            .unwrap());
    }

    /// Stop an instance (it keeps its address: a stopped bastion's address may be taken over).
    async fn stop(&self, instance: &str) {
        self.deps
            .ec2
            .client()
            .stop_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
    }

    /// Start a stopped instance again (the on-call restarting a bastion).
    async fn start(&self, instance: &str) {
        self.deps
            .ec2
            .client()
            .start_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
    }

    async fn terminate(&self, instance: &str) {
        self.deps
            .ec2
            .client()
            .terminate_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
    }

    /// Each AWS call of the function tried once: a failed call fails the invocation (as if the
    /// process died there), and Lambda's redelivery is what tries again.
    async fn one_attempt(&mut self) {
        let sdk = ops_core::aws::sdk_config(&ops_core::aws::AwsSettings {
            max_attempts: 1,
            ..self.emulator.settings()
        })
        .await;
        self.deps.ec2 = Ec2::new(&sdk);
        self.deps.groups = AutoScalingGroups::new(&sdk);
    }

    /// Calls answered by the emulator, per operation, since the counts were last reset.
    fn calls(&self, operation: &str) -> u64 {
        let service = if operation == "CompleteLifecycleAction" {
            "autoscaling"
        } else {
            "ec2"
        };
        self.emulator.calls(service, operation)
    }

    fn result_of(&self, instance: &str) -> Option<String> {
        let actions = self
            .emulator
            .control("GET", "/_ops/autoscaling/lifecycle-actions", None)
            .unwrap();
        actions["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["instance_id"] == instance)
            .and_then(|a| a["result"].as_str().map(String::from))
    }

    fn mutations(&self) -> u64 {
        [
            "AssociateAddress",
            "DisassociateAddress",
            "TerminateInstances",
            "CreateTags",
            "DeleteTags",
        ]
        .iter()
        .map(|op| self.emulator.calls("ec2", op))
        .sum::<u64>()
            + ["CompleteLifecycleAction", "SetDesiredCapacity"]
                .iter()
                .map(|op| self.emulator.calls("autoscaling", op))
                .sum::<u64>()
    }
}

#[tokio::test]
async fn a_launch_gets_its_pool_address_verified_then_continues() {
    let world = World::new(1).await;
    let (instance, event) = world.launch();

    let answer = world.handle(event).await.unwrap();

    assert_eq!(answer["result"], "CONTINUE", "{answer:#}");
    assert_eq!(world.holders().await, vec![Some(instance.clone())]);
    assert_eq!(world.result_of(&instance).as_deref(), Some("CONTINUE"));
    let alert = &world.deps.alerts.sent()[0];
    assert_eq!(alert.event_type, "eip.associated");
    assert!(
        alert.title.starts_with(&format!("{instance} got ")),
        "{}",
        alert.title
    );
    assert!(
        alert.what.contains(&format!(
            "is now on {instance} of group bastion in us-east-1a, verified"
        )),
        "{}",
        alert.what
    );
}

#[tokio::test]
async fn an_instance_already_holding_a_pool_address_continues_without_moving_it_and_its_launch_is_alerted_once(
) {
    let world = World::new(2).await;
    let (instance, event) = world.launch();
    world.give(&instance).await;
    let associations = world.emulator.calls("ec2", "AssociateAddress");

    let answer = world.handle(event).await.unwrap();

    assert_eq!(answer["result"], "CONTINUE");
    assert_eq!(answer["secured"]["outcome"], "already_held");
    assert_eq!(
        world.emulator.calls("ec2", "AssociateAddress"),
        associations
    );
    // The launch's outcome is told once, by the run that completed it.
    let sent = world.deps.alerts.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].event_type, "eip.associated");
    assert_eq!(sent[0].context["launch_result"], "CONTINUE");
}

#[tokio::test]
async fn two_launches_racing_for_the_last_address_give_one_winner_and_steal_nothing() {
    let world = World::new(1).await;
    let (a, event_a) = world.launch();
    let (b, event_b) = world.launch();
    // Hold the first association back so both launches read the address as free before either
    // associates: a real race, which EC2's refusal to re-associate must settle.
    world.emulator.add_fault(json!({"service": "ec2", "operation": "AssociateAddress", "kind": "latency", "latency_ms": 700, "on_calls": [1]}));

    let (answer_a, answer_b) = tokio::join!(world.handle(event_a), world.handle(event_b));

    let results = [
        answer_a.unwrap()["result"].clone(),
        answer_b.unwrap()["result"].clone(),
    ];
    assert_eq!(
        results.iter().filter(|r| **r == "CONTINUE").count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == "ABANDON").count(),
        1,
        "{results:?}"
    );
    let winner = if results[0] == "CONTINUE" { &a } else { &b };
    assert_eq!(
        world.holders().await,
        vec![Some(winner.clone())],
        "the winner keeps it: nothing stolen"
    );
    let ip = world
        .deps
        .ec2
        .addresses_tagged("ops:eip-pool", Some("bastion"))
        .await
        .unwrap()[0]
        .public_ip
        .clone();
    let critical = world
        .deps
        .alerts
        .sent()
        .into_iter()
        .find(|alert| alert.severity == Severity::Critical)
        .expect("a critical alert");
    assert_eq!(critical.event_type, "eip.pool-exhausted");
    assert!(
        critical.what.contains(&format!(
            "It lost the race for {ip} (free when read: another instance associated it first)"
        )),
        "{}",
        critical.what
    );
}

#[tokio::test]
async fn an_exhausted_pool_abandons_the_launch_with_a_critical_alert() {
    let world = World::new(1).await;
    world.give(&world.first).await;
    let (instance, event) = world.launch();

    let answer = world.handle(event).await.unwrap();

    assert_eq!(answer["result"], "ABANDON");
    assert_eq!(world.result_of(&instance).as_deref(), Some("ABANDON"));
    assert_eq!(
        world.holders().await,
        vec![Some(world.first.clone())],
        "the healthy bastion keeps its address"
    );
    let alert = &world.deps.alerts.sent()[0];
    assert_eq!(
        (alert.severity, alert.event_type.as_str()),
        (Severity::Critical, "eip.pool-exhausted")
    );
    assert_eq!(
        alert.title,
        format!("pool bastion exhausted: {instance} has no Elastic IP")
    );
    assert!(
        alert.what.contains(&format!("({}, running)", world.first)),
        "{}",
        alert.what
    );
}

#[tokio::test]
async fn the_address_of_a_terminated_bastion_is_freed_by_ec2_and_goes_to_its_replacement() {
    // Given: the pool's only address on the first bastion, which is terminated. EC2 disassociates
    // a terminated instance's Elastic IP (EC2 User Guide, "Elastic IP addresses"; the emulator
    // follows it, see tests/emulator/test_ec2_addresses.py), so there is nothing to take over.
    let world = World::new(1).await;
    world.give(&world.first).await;
    world.terminate(&world.first).await;
    assert_eq!(world.holders().await, vec![None]);
    let (instance, event) = world.launch();

    let answer = world.handle(event).await.unwrap();

    assert_eq!(answer["result"], "CONTINUE", "{answer:#}");
    assert_eq!(answer["secured"]["outcome"], "associated", "{answer:#}");
    assert_eq!(world.holders().await, vec![Some(instance.clone())]);
    let alert = &world.deps.alerts.sent()[0];
    assert_eq!(
        (alert.severity, alert.event_type.as_str()),
        (Severity::Info, "eip.associated")
    );
}

#[tokio::test]
async fn two_launches_racing_to_take_over_the_only_address_from_a_stopped_bastion_give_one_winner_and_the_loser_abandons(
) {
    // Given: the pool's only address is held by the first bastion, which is stopped, and two
    // bastions launch at once.
    let world = World::new(1).await;
    world.give(&world.first).await;
    world.stop(&world.first).await;
    let ip = world
        .deps
        .ec2
        .addresses_tagged("ops:eip-pool", Some("bastion"))
        .await
        .unwrap()[0]
        .public_ip
        .clone();
    let (a, event_a) = world.launch();
    let (b, event_b) = world.launch();
    world.emulator.reset_calls();
    // Hold the first attempt to free the address back, so that both launches read it as held by
    // the stopped bastion before either moves it: a real race, which EC2 must settle. A second
    // association, should one be tried, lands after the first one was verified (as in the
    // incident: the second takeover moved the address off a bastion that had already verified it).
    world.emulator.add_fault(json!({"service": "ec2", "operation": "DisassociateAddress", "kind": "latency", "latency_ms": 1000, "on_calls": [1]}));
    world.emulator.add_fault(json!({"service": "ec2", "operation": "AssociateAddress", "kind": "latency", "latency_ms": 1000, "on_calls": [2]}));

    // When: both are handled at once.
    let (answer_a, answer_b) = tokio::join!(world.handle(event_a), world.handle(event_b));

    // Then: exactly one CONTINUE, with the address verified on it; the other ABANDONs.
    let (answer_a, answer_b) = (answer_a.unwrap(), answer_b.unwrap());
    let (winner, loser) = match (answer_a["result"].as_str(), answer_b["result"].as_str()) {
        (Some("CONTINUE"), Some("ABANDON")) => (&a, &b),
        (Some("ABANDON"), Some("CONTINUE")) => (&b, &a),
        other => panic!(
            "exactly one CONTINUE and one ABANDON, got {other:?}:\n{answer_a:#}\n{answer_b:#}"
        ),
    };
    assert_eq!(
        world.holders().await,
        vec![Some(winner.clone())],
        "the address is on the winner"
    );
    assert_eq!(world.result_of(winner).as_deref(), Some("CONTINUE"));
    assert_eq!(world.result_of(loser).as_deref(), Some("ABANDON"));
    assert_eq!(
        world.calls("AssociateAddress"),
        1,
        "one association, and nothing moved the address off the winner afterwards"
    );
    assert_eq!(
        world.calls("DisassociateAddress"),
        2,
        "both tried to free the address from the stopped bastion by its association id; EC2 let one"
    );
    let alerts = world.deps.alerts.sent();
    let taken: Vec<_> = alerts
        .iter()
        .filter(|alert| alert.event_type == "eip.taken-over")
        .collect();
    assert_eq!(taken.len(), 1, "one takeover alert: {alerts:#?}");
    assert_eq!(
        taken[0].title,
        format!("{winner} took over {ip} from {} (stopped)", world.first)
    );
    assert!(
        taken[0].what.contains("verified with DescribeAddresses"),
        "{}",
        taken[0].what
    );
    let critical: Vec<_> = alerts
        .iter()
        .filter(|alert| alert.severity == Severity::Critical)
        .collect();
    assert_eq!(critical.len(), 1, "{alerts:#?}");
    assert_eq!(critical[0].event_type, "eip.pool-exhausted");
    assert_eq!(
        critical[0].title,
        format!("pool bastion exhausted: {loser} has no Elastic IP")
    );
    assert!(
        critical[0].what.contains(&format!(
            "It lost the race for {ip} (taking it over from {}, stopped: another instance freed it first)",
            world.first
        )),
        "{}",
        critical[0].what
    );
    assert!(
        critical[0]
            .what
            .contains(&format!("Held: {ip} ({winner}, ")),
        "{}",
        critical[0].what
    );
}

#[tokio::test]
async fn a_launch_whose_instance_is_already_terminated_gets_no_address() {
    // Given: a launch held at the hook whose instance was terminated before the event arrived
    // (the group then lets go of it, as Auto Scaling does), and a free address in the pool.
    let world = World::new(1).await;
    let (instance, event) = world.launch();
    world.terminate(&instance).await;
    world.emulator.reset_calls();

    // When
    let answer = world.handle(event).await.unwrap();

    // Then: no AssociateAddress call, no CONTINUE, and the answer says why.
    assert_eq!(world.calls("AssociateAddress"), 0, "{answer:#}");
    assert_eq!(world.calls("DisassociateAddress"), 0);
    assert_eq!(world.calls("CompleteLifecycleAction"), 0);
    assert_eq!(answer["status"], "already_completed", "{answer:#}");
    assert_eq!(
        answer["reason"],
        format!("{instance} is terminated and no longer in group bastion")
    );
    assert_ne!(world.result_of(&instance).as_deref(), Some("CONTINUE"));
    assert_eq!(world.holders().await, vec![None], "the address stays free");
    assert!(world.deps.alerts.sent().is_empty());
}

#[tokio::test]
async fn a_launch_whose_instance_stopped_while_held_at_the_hook_gets_no_address_and_is_abandoned() {
    // Given: the group still holds the launch at its hook, but EC2 has the instance stopped (no
    // longer pending or running), and a free address in the pool.
    let world = World::new(1).await;
    let (instance, event) = world.launch();
    world.stop(&instance).await;
    world.emulator.reset_calls();

    // When
    let answer = world.handle(event).await.unwrap();

    // Then: no AssociateAddress call; the launch is completed with ABANDON, never CONTINUE.
    assert_eq!(world.calls("AssociateAddress"), 0, "{answer:#}");
    assert_eq!(world.calls("DisassociateAddress"), 0);
    assert_eq!(answer["result"], "ABANDON", "{answer:#}");
    assert_eq!(answer["secured"]["outcome"], "instance_gone");
    assert_eq!(answer["secured"]["state"], "stopped");
    assert_eq!(world.result_of(&instance).as_deref(), Some("ABANDON"));
    assert_eq!(world.holders().await, vec![None], "the address stays free");
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        (alerts[0].severity, alerts[0].event_type.as_str()),
        (Severity::Warning, "eip.launch-abandoned")
    );
    assert_eq!(
        alerts[0].title,
        format!("launch of {instance} abandoned: the instance is stopped")
    );
    assert!(
        alerts[0].what.contains("no address was associated"),
        "{}",
        alerts[0].what
    );
}

#[tokio::test]
async fn a_launch_event_redelivered_after_its_abandon_touches_no_address() {
    // Given: a launch abandoned for want of an address (the first bastion held the only one),
    // and the address freed afterwards.
    let world = World::new(1).await;
    world.give(&world.first).await;
    let (instance, event) = world.launch();
    let first = world.handle(event.clone()).await.unwrap();
    assert_eq!(first["result"], "ABANDON", "{first:#}");
    let association = world
        .deps
        .ec2
        .addresses_tagged("ops:eip-pool", Some("bastion"))
        .await
        .unwrap()[0]
        .association_id
        .clone()
        .expect("associated with the first bastion");
    assert!(world.deps.ec2.disassociate(&association).await.unwrap());
    world.emulator.reset_calls();

    // When: EventBridge delivers the launch event again.
    let again = world.handle(event).await.unwrap();

    // Then: the action is over; no address is touched and nothing is completed again.
    assert_eq!(again["status"], "already_completed", "{again:#}");
    assert_eq!(world.calls("AssociateAddress"), 0);
    assert_eq!(world.calls("DisassociateAddress"), 0);
    assert_eq!(world.calls("CompleteLifecycleAction"), 0);
    assert_eq!(
        world.holders().await,
        vec![None],
        "the freed address stays free"
    );
    assert_eq!(world.result_of(&instance).as_deref(), Some("ABANDON"));
    assert_eq!(
        world.deps.alerts.sent().len(),
        1,
        "only the first delivery alerted"
    );
}

#[tokio::test]
async fn a_launch_whose_action_ends_while_it_associates_gives_the_address_back() {
    // Given: a launch held at the hook, and its first AssociateAddress held back.
    let world = World::new(1).await;
    let (instance, event) = world.launch();
    let token = event["detail"]["LifecycleActionToken"]
        .as_str()
        .unwrap()
        .to_string();
    world.emulator.reset_calls();
    world.emulator.add_fault(json!({"service": "ec2", "operation": "AssociateAddress", "kind": "latency", "latency_ms": 1000, "on_calls": [1]}));

    // When: the hook's action ends with ABANDON (its timeout, or anyone completing it) while the
    // association is on its way.
    let abandon = async {
        for waited in 0.. {
            if world.calls("AssociateAddress") > 0 {
                break;
            }
            assert!(waited < 500, "no AssociateAddress within 10 s");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(world
            .deps
            .groups
            .complete_lifecycle_action("bastion", "bastion-launch", &token, &instance, "ABANDON")
            .await
            .unwrap());
    };
    let (answer, ()) = tokio::join!(world.handle(event), abandon);

    // Then: the run notices the action is over, and gives back the address it had just associated.
    let answer = answer.unwrap();
    assert_eq!(answer["status"], "already_completed", "{answer:#}");
    // ABANDON terminates the instance, and EC2 frees a terminated instance's address; the run
    // also ends its own association by id if it still stands (`released`): either way the
    // address is back in the pool.
    assert!(answer["released"].is_boolean(), "{answer:#}");
    assert_eq!(world.result_of(&instance).as_deref(), Some("ABANDON"));
    assert_eq!(
        world.holders().await,
        vec![None],
        "the address is back in the pool"
    );
    assert!(world.deps.alerts.sent().is_empty());
}

#[tokio::test]
async fn a_takeover_whose_stopped_holder_is_started_meanwhile_gives_the_address_back() {
    // Found by an independent test: the pool's only address is on `first`, stopped; a launch
    // read it as stopped and, while its DisassociateAddress was on its way, the on-call started
    // `first` again. The address moved to the launch and `first` ran without its fixed IP.
    let world = World::new(1).await;
    world.give(&world.first).await;
    world
        .deps
        .ec2
        .client()
        .stop_instances()
        .instance_ids(&world.first)
        .send()
        .await
        .unwrap();
    let (instance, event) = world.launch();
    world.emulator.reset_calls();
    world.emulator.add_fault(json!({"service": "ec2", "operation": "DisassociateAddress", "kind": "latency", "latency_ms": 1000, "on_calls": [1]}));

    let restart = async {
        for waited in 0.. {
            if world.calls("DisassociateAddress") > 0 {
                break;
            }
            assert!(waited < 500, "no DisassociateAddress within 10 s");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        world.start(&world.first).await;
    };
    let (answer, ()) = tokio::join!(world.handle(event), restart);

    let answer = answer.unwrap();
    println!("{answer:#}");
    assert_eq!(
        world.holders().await,
        vec![Some(world.first.clone())],
        "the address is back on the bastion that was started"
    );
    assert_eq!(
        world.result_of(&instance).as_deref(),
        Some("ABANDON"),
        "{answer:#}"
    );
    let sent = world.deps.alerts.sent();
    assert!(
        sent.iter().all(|a| !a.title.contains("took over")),
        "no takeover is claimed: {sent:#?}"
    );
    let abandoned = serde_json::to_string(&sent).unwrap();
    assert!(
        abandoned.contains("is running again: the address was given back to it")
            || abandoned.contains("is pending again: the address was given back to it"),
        "{abandoned}"
    );
}

#[tokio::test]
async fn a_takeover_that_dies_right_after_freeing_the_address_gives_it_back_to_a_holder_started_since(
) {
    // Found by an independent test (E6): a takeover run died right after DisassociateAddress,
    // before it read the holder again, while the on-call restarted the stopped holder; the
    // redelivery found the address free and gave it to the new bastion. The takeover now marks the
    // address (`ops:eip-freeing`) before freeing it, and whoever next finds it free checks that
    // holder again first. The call to fail is found, not counted by hand: the first k whose
    // failure leaves the address free.
    for k in 1.. {
        assert!(k < 20, "no failure left the address freed by a dead run");
        let mut world = World::new(1).await;
        world.give(&world.first).await;
        world.stop(&world.first).await;
        world.one_attempt().await;
        let (instance, event) = world.launch();
        world.emulator.reset_calls();
        world
            .emulator
            .add_fault(json!({"service": "*", "kind": "error500", "on_calls": [k], "times": 1}));
        if world.handle(event.clone()).await.is_ok() || world.holders().await != vec![None] {
            continue;
        }
        assert_eq!(
            world.marks().await,
            vec![format!("from={} for={instance}", world.first)],
            "the dead run's intent is on the address"
        );
        world.start(&world.first).await;

        let again = world.handle(event).await.expect("the redelivery settles");

        assert_eq!(
            world.holders().await,
            vec![Some(world.first.clone())],
            "the address is back on the bastion that was started: {again:#}"
        );
        assert_eq!(world.result_of(&instance).as_deref(), Some("ABANDON"));
        assert_eq!(
            world.marks().await,
            Vec::<String>::new(),
            "the mark is gone"
        );
        let sent = serde_json::to_string(&world.deps.alerts.sent()).unwrap();
        assert!(
            sent.contains(&format!(
                "freed from {first} by a takeover that did not finish; {first} is running again: the address was given back to it",
                first = world.first
            )) || sent.contains(&format!(
                "freed from {first} by a takeover that did not finish; {first} is pending again: the address was given back to it",
                first = world.first
            )),
            "{sent}"
        );
        println!(
            "a failure at call {k} left the address freed; the redelivery gave it back: {again:#}"
        );
        return;
    }
}

/// One takeover launch (the pool's only address on a stopped bastion) whose `fault_at`-th AWS call
/// fails once, as if the function died there, redelivered until it settles: the end state, and how
/// many calls were made.
async fn takeover_with_a_failure_at(fault_at: Option<u64>) -> (String, u64) {
    let mut world = World::new(1).await;
    world.give(&world.first).await;
    world.stop(&world.first).await;
    let (instance, event) = world.launch();
    // Each AWS call tried once: a failed call fails the invocation.
    let sdk = ops_core::aws::sdk_config(&ops_core::aws::AwsSettings {
        max_attempts: 1,
        ..world.emulator.settings()
    })
    .await;
    world.deps.ec2 = Ec2::new(&sdk);
    world.deps.groups = AutoScalingGroups::new(&sdk);
    world.emulator.reset_calls();
    if let Some(k) = fault_at {
        world
            .emulator
            .add_fault(json!({"service": "*", "kind": "error500", "on_calls": [k], "times": 1}));
    }

    until_settled(20, || world.handle(event.clone()))
        .await
        .expect("the launch settles");

    let made = world.emulator.total_calls();
    if fault_at.is_some() {
        assert_eq!(
            world.emulator.faults_fired(),
            1,
            "the fault at call {fault_at:?} fired"
        );
        world
            .emulator
            .control("DELETE", "/_ops/faults", None)
            .unwrap();
    }
    let holders: Vec<String> = world
        .holders()
        .await
        .into_iter()
        .map(|holder| match holder {
            Some(holder) if holder == instance => "the new bastion".to_string(),
            Some(holder) if holder == world.first => "the stopped bastion".to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    (
        format!(
            "addresses {holders:?}, lifecycle result {:?}, freeing marks left {:?}",
            world.result_of(&instance),
            world.marks().await
        ),
        made,
    )
}

#[tokio::test]
async fn a_takeover_converges_from_a_failure_at_any_call() {
    let (clean, total) = takeover_with_a_failure_at(None).await;
    assert_eq!(
        clean,
        r#"addresses ["the new bastion"], lifecycle result Some("CONTINUE"), freeing marks left []"#
    );

    for k in 1..=total {
        let (outcome, _) = takeover_with_a_failure_at(Some(k)).await;
        assert_eq!(
            outcome, clean,
            "a failure at call {k} of {total} did not converge"
        );
    }
    println!(
        "takeover crash points: {total} AWS calls, k = 1..={total}: all converged to: {clean}"
    );
}

#[tokio::test]
async fn the_reconcile_repairs_a_bastion_that_lost_its_address_once() {
    let world = World::new(1).await;

    let first = world.handle(scheduled(1_795_000_000)).await.unwrap();
    let second = world.handle(scheduled(1_795_000_300)).await.unwrap();

    assert_eq!(
        first["repaired"][0]["instance"],
        world.first.as_str(),
        "{first:#}"
    );
    assert_eq!(second["repaired"], json!([]), "nothing left to repair");
    assert_eq!(world.holders().await, vec![Some(world.first.clone())]);
    let alerts = world.deps.alerts.sent();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].event_type, "eip.drift-repaired");
}

#[tokio::test]
async fn a_duplicated_launch_event_does_nothing_twice() {
    let world = World::new(1).await;
    let (instance, event) = world.launch();

    world.handle(event.clone()).await.unwrap();
    let again = world.handle(event).await.unwrap();

    assert_eq!(again["status"], "already_completed");
    assert_eq!(world.emulator.calls("ec2", "AssociateAddress"), 1);
    assert_eq!(world.deps.alerts.sent().len(), 1);
    assert_eq!(world.holders().await, vec![Some(instance)]);
}

#[tokio::test]
async fn a_standalone_bastion_gets_its_address_when_it_starts_running() {
    let world = World::new(1).await;
    let image = world
        .deps
        .ec2
        .client()
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .unwrap()
        .images
        .unwrap()[0]
        .image_id
        .clone()
        .unwrap();
    let run = world
        .deps
        .ec2
        .client()
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(Tag::builder().key("ops:eip-pool").value("bastion").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let instance = run.instances.unwrap()[0].instance_id.clone().unwrap();
    let event = json!({"version": "0", "id": "x", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
                       "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1", "resources": [],
                       "detail": {"instance-id": instance, "state": "running"}});

    let answer = world.handle(event).await.unwrap();

    assert_eq!(answer["secured"]["outcome"], "associated", "{answer:#}");
    assert_eq!(world.holders().await, vec![Some(instance)]);
}

#[tokio::test]
async fn thirty_percent_throttling_still_converges() {
    let world = World::new(1).await;
    let (instance, event) = world.launch();
    for service in ["ec2", "autoscaling"] {
        world
            .emulator
            .add_fault(json!({"service": service, "kind": "throttle", "rate": 0.3}));
    }

    // Lambda redelivers an event whose invocation failed with a retryable error.
    let outcome = until_settled(10, || world.handle(event.clone())).await;

    outcome.expect("converged despite throttling");
    let fired = world.emulator.faults_fired();
    assert!(fired >= 2, "throttling happened ({fired})");
    world
        .emulator
        .control("DELETE", "/_ops/faults", None)
        .unwrap();
    assert_eq!(world.holders().await, vec![Some(instance.clone())]);
    assert_eq!(world.result_of(&instance).as_deref(), Some("CONTINUE"));
}

#[tokio::test]
async fn malformed_events_get_specific_errors_and_change_nothing() {
    let world = World::new(1).await;
    let (_, launch) = world.launch();
    let with = |key: &str, value: Value| {
        let mut event = launch.clone();
        event["detail"][key] = value;
        event
    };
    let mutations = world.mutations();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([]),
            "unrecognised payload: the payload is not a JSON object",
        ),
        (
            json!({"command": "associate"}),
            "unknown command `associate`",
        ),
        (
            with("EC2InstanceId", json!(null)),
            "malformed `EC2 Instance-launch Lifecycle Action` event: invalid type: null",
        ),
        (
            with("EC2InstanceId", json!("not-an-instance")),
            "`not-an-instance` is not an instance id",
        ),
        (
            with(
                "LifecycleTransition",
                json!("autoscaling:EC2_INSTANCE_TERMINATING"),
            ),
            "transition `autoscaling:EC2_INSTANCE_TERMINATING` is not a launch",
        ),
        (
            with("AutoScalingGroupName", json!("web")),
            "refused: group `web` is not in BASTION_GROUPS",
        ),
        (
            json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {"state": "running"}}),
            "missing field `instance-id`",
        ),
        (
            json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {"instance-id": "i-0000000000000dead", "state": "running"}}),
            "EC2 instance `i-0000000000000dead` not found",
        ),
    ];
    for (payload, expected) in &cases {
        let error = world
            .handle(payload.clone())
            .await
            .expect_err(&format!("{payload} should be rejected"));
        let message = error.to_string();
        assert!(
            message.contains(expected),
            "payload {payload}\n  got      {message}\n  expected {expected}"
        );
        assert!(!error.retryable(), "{message}");
    }
    assert_eq!(world.mutations(), mutations, "nothing changed");
    assert!(world.deps.alerts.sent().is_empty());
}

/// The statements bastion-eip-associator's role needs for group `bastion` and its pool (as
/// sam/template.yaml grants them, plus the read of lifecycle hooks that `doctor` makes, the
/// DisassociateAddress on pool addresses that a takeover makes and the freeing mark it writes
/// first), by `Sid`.
fn associator_statements() -> Vec<Value> {
    vec![
        json!({"Sid": "ReadPoolsInstancesAndGroups", "Effect": "Allow",
               "Action": ["ec2:DescribeAddresses", "ec2:DescribeInstances",
                          "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeLifecycleHooks"],
               "Resource": "*"}),
        json!({"Sid": "AssociateOnlyPoolAddresses", "Effect": "Allow",
               "Action": "ec2:AssociateAddress",
               "Resource": "arn:aws:ec2:us-east-1:123456789012:elastic-ip/*",
               "Condition": {"Null": {"aws:ResourceTag/ops:eip-pool": "false"}}}),
        json!({"Sid": "TakeOverOnlyPoolAddresses", "Effect": "Allow",
               "Action": "ec2:DisassociateAddress",
               "Resource": "arn:aws:ec2:us-east-1:123456789012:elastic-ip/*",
               "Condition": {"Null": {"aws:ResourceTag/ops:eip-pool": "false"}}}),
        json!({"Sid": "MarkOnlyPoolAddressesBeingTakenOver", "Effect": "Allow",
               "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
               "Resource": "arn:aws:ec2:us-east-1:123456789012:elastic-ip/*",
               "Condition": {"Null": {"aws:ResourceTag/ops:eip-pool": "false", "aws:TagKeys": "false"},
                             "ForAllValues:StringEquals": {"aws:TagKeys": ["ops:eip-freeing"]}}}),
        json!({"Sid": "AssociateToInstancesOfThisAccount", "Effect": "Allow",
               "Action": "ec2:AssociateAddress",
               "Resource": "arn:aws:ec2:us-east-1:123456789012:instance/*"}),
        json!({"Sid": "CompleteLaunchesOfListedGroups", "Effect": "Allow",
               "Action": "autoscaling:CompleteLifecycleAction",
               "Resource": "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/bastion"}),
        json!({"Sid": "Alert", "Effect": "Allow", "Action": "sns:Publish",
               "Resource": "arn:aws:sns:us-east-1:123456789012:ops-alerts"}),
    ]
}

#[tokio::test]
async fn doctor_proves_every_duty_with_iam_and_the_alert_path_and_names_a_missing_grant() {
    let mut world = World::new(1).await;
    let statements = associator_statements();
    let role = grant(
        &world.emulator,
        "opsstack-bastion-eip-associator",
        &statements,
    )
    .await;
    world.deps.config = AssociatorConfig::from_env(&Env::from_pairs([
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:ops-alerts".to_string(),
        ),
        ("BASTION_GROUPS", "bastion".to_string()),
        ("ASSOCIATE_RETRY_DELAY_MS", "0".to_string()),
        ("OPS_ROLE_ARN", role),
    ]))
    .expect("config");
    let address = world
        .deps
        .ec2
        .addresses_tagged("ops:eip-pool", Some("bastion"))
        .await
        .unwrap()
        .remove(0);
    let mutations = world.mutations();
    let help = world.handle(json!({"command": "help"})).await.unwrap();
    assert!(
        help["help"].as_str().unwrap().contains("  doctor {} - "),
        "{help}"
    );

    let answer = world
        .handle(json!({"command": "doctor"}))
        .await
        .expect("doctor answers");

    assert_eq!(answer["ok"], true, "{:#}", answer["table"]);
    let rows = fixtures::doctor_permissions(&answer);
    assert!(rows.iter().all(|(_, verdict)| verdict == "ok"), "{rows:#?}");
    let group = world.deps.groups.describe("bastion").await.unwrap();
    let pool_address = format!(
        "ec2:AssociateAddress on arn:aws:ec2:us-east-1:123456789012:elastic-ip/{}",
        address.allocation_id
    );
    for expected in [
        pool_address.clone(),
        format!(
            "ec2:DisassociateAddress on arn:aws:ec2:us-east-1:123456789012:elastic-ip/{}",
            address.allocation_id
        ),
        format!(
            "ec2:CreateTags on arn:aws:ec2:us-east-1:123456789012:elastic-ip/{}",
            address.allocation_id
        ),
        format!(
            "ec2:DeleteTags on arn:aws:ec2:us-east-1:123456789012:elastic-ip/{}",
            address.allocation_id
        ),
        format!(
            "ec2:AssociateAddress on arn:aws:ec2:us-east-1:123456789012:instance/{}",
            world.first
        ),
        format!("autoscaling:CompleteLifecycleAction on {}", group.arn),
        "autoscaling:DescribeLifecycleHooks on *".to_string(),
        "sns:Publish on arn:aws:sns:us-east-1:123456789012:ops-alerts".to_string(),
    ] {
        assert!(
            rows.iter().any(|(subject, _)| *subject == expected),
            "no duty {expected}: {rows:#?}"
        );
    }
    let found: Vec<&str> = answer["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["area"] == "resource")
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    for expected in [
        "Auto Scaling group bastion",
        "launch lifecycle hook bastion-launch of bastion",
        "Elastic IP pool bastion",
        &format!(
            "Elastic IP {} ({})",
            address.public_ip, address.allocation_id
        ),
    ] {
        assert!(
            found.contains(&expected),
            "no resource {expected}: {found:#?}"
        );
    }
    let sent = world.deps.alerts.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].event_type.as_str(), sent[0].severity),
        ("doctor", Severity::Info),
        "the doctor alert proves the alert path"
    );
    assert_eq!(world.mutations(), mutations, "doctor changes nothing");

    // Without the statement that lets pool addresses move, no bastion would get one.
    let fewer: Vec<Value> = statements
        .into_iter()
        .filter(|s| s["Sid"] != "AssociateOnlyPoolAddresses")
        .collect();
    grant(&world.emulator, "opsstack-bastion-eip-associator", &fewer).await;

    let answer = world
        .handle(json!({"command": "doctor"}))
        .await
        .expect("doctor answers");

    assert_eq!(answer["ok"], false);
    assert!(
        fixtures::doctor_permissions(&answer)
            .contains(&(pool_address.clone(), "denied".to_string())),
        "{:#}",
        answer["table"]
    );
    let first = answer["table"][0].as_str().unwrap();
    assert!(
        first.starts_with("DENIED") && first.contains(&pool_address),
        "the denied duty leads the table: {first}"
    );
}

/// Give `role` (made if need be) one inline policy made of `statements`; the role's ARN.
async fn grant(emulator: &Emulator, role: &str, statements: &[Value]) -> String {
    let iam = aws_sdk_iam::Client::new(&emulator.sdk_config().await);
    let document = json!({"Version": "2012-10-17", "Statement": statements});
    fixtures::function_role(&iam, role, &document).await
}

#[tokio::test]
async fn two_reconciles_at_once_give_a_bastion_one_address_and_each_alerts_only_what_it_associated()
{
    // Given: an in-service bastion without an address and two free addresses (the model's
    // sequence: World { groups: 1, pool: 2, initial: [true, false] }, Tick WithNext, Tick).
    let world = World::new(2).await;

    // When: two schedule ticks run at the same time.
    let (a, b) = tokio::join!(
        world.handle(scheduled(1_795_000_000)),
        world.handle(scheduled(1_795_000_300))
    );

    // Then: the bastion holds one address and the other stays free. EC2 accepts re-associating an
    // address with the instance it is already on (AssociateAddress is idempotent), so both runs
    // may associate it; a run reads the address just before associating and compares the
    // association read back with its own, and alerts only when its own association stands.
    let (a, b) = (a.unwrap(), b.unwrap());
    let holders = world.holders().await;
    assert_eq!(
        holders,
        vec![Some(world.first.clone()), None],
        "{a:#}\n{b:#}"
    );
    let said_repaired = [&a, &b]
        .iter()
        .filter(|answer| answer["repaired"].as_array().is_some_and(|r| !r.is_empty()))
        .count();
    let alerted: Vec<_> = world
        .deps
        .alerts
        .sent()
        .into_iter()
        .filter(|alert| alert.event_type == "eip.drift-repaired")
        .collect();
    assert!(said_repaired >= 1, "{a:#}\n{b:#}");
    assert_eq!(alerted.len(), said_repaired, "{alerted:#?}\n{a:#}\n{b:#}");
}

#[tokio::test]
async fn a_scheduled_event_not_from_the_eventbridge_schedule_is_refused_and_changes_nothing() {
    // Given: a bastion the reconcile would repair (in service, no address, a free address). The
    // model's sequence: World { groups: 1, pool: 1, initial: [false, false] }, ForgedTick.
    let world = World::new(1).await;
    world.emulator.reset_calls();

    // When: a person sends a `Scheduled Event` from chat, with another source or none.
    for source in [json!("chat.forged"), json!(null)] {
        let mut forged = scheduled(1_795_000_000);
        forged["source"] = source.clone();

        let error = world.handle(forged).await.expect_err("refused");

        // Then: refused, not retried, with a message that says why; nothing read or changed.
        let message = error.to_string();
        assert!(matches!(error, Error::Refused(_)), "{message}");
        assert!(!error.retryable(), "{message}");
        assert!(
            message.contains("does not start the reconcile: only the EventBridge schedule (source `aws.events`) does; nothing was read or changed"),
            "{message}"
        );
    }
    assert_eq!(world.emulator.total_calls(), 0, "no AWS call at all");
    assert_eq!(world.holders().await, vec![None]);
    assert!(world.deps.alerts.sent().is_empty());
    // The schedule's own event still reconciles.
    let tick = world.handle(scheduled(1_795_000_300)).await.unwrap();
    assert_eq!(tick["status"], "reconciled", "{tick:#}");
    assert_eq!(world.holders().await, vec![Some(world.first.clone())]);
}

#[tokio::test]
async fn a_launch_retried_after_it_associated_but_failed_to_complete_continues_and_is_alerted_once()
{
    // Given: a launch whose first delivery associates the address and then fails at
    // CompleteLifecycleAction (as if the process died there).
    let mut world = World::new(1).await;
    world.one_attempt().await;
    let (instance, event) = world.launch();
    world.emulator.add_fault(json!({"service": "autoscaling", "operation": "CompleteLifecycleAction", "kind": "error500", "on_calls": [1], "times": 1}));
    let first = world.handle(event.clone()).await;
    let error = first.expect_err("the completion failed");
    assert!(error.retryable(), "{error}");
    assert_eq!(world.holders().await, vec![Some(instance.clone())]);
    assert!(world.deps.alerts.sent().is_empty());

    // When: Lambda delivers it again.
    let again = world.handle(event.clone()).await.unwrap();

    // Then: it continues with the address it already holds, and the launch is alerted once.
    assert_eq!(again["result"], "CONTINUE", "{again:#}");
    assert_eq!(again["secured"]["outcome"], "already_held", "{again:#}");
    assert_eq!(world.result_of(&instance).as_deref(), Some("CONTINUE"));
    let sent = world.deps.alerts.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].event_type, "eip.associated");
    assert_eq!(sent[0].context["launch_result"], "CONTINUE");
    assert!(
        sent[0]
            .what
            .contains("associated by an earlier delivery of this launch"),
        "{}",
        sent[0].what
    );
    // A third delivery finds the launch over and says nothing.
    let third = world.handle(event).await.unwrap();
    assert_eq!(third["status"], "already_completed");
    assert_eq!(world.deps.alerts.sent().len(), 1);
}

#[tokio::test]
async fn a_launch_whose_alert_fails_to_publish_once_after_it_completed_is_still_alerted_once() {
    // Given: alerts through SNS (the emulator's topic), each AWS call tried once, and the first
    // Publish failing.
    let world = World::new(1).await;
    let sdk = ops_core::aws::sdk_config(&ops_core::aws::AwsSettings {
        max_attempts: 1,
        ..world.emulator.settings()
    })
    .await;
    let topic = aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name("ops-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let deps = Deps {
        ec2: Ec2::new(&sdk),
        groups: AutoScalingGroups::new(&sdk),
        iam: IamSimulator::new(&sdk),
        alerts: SnsAlerts::new(&sdk, &topic),
        config: world.deps.config.clone(),
    };
    let published = || {
        world
            .emulator
            .control(
                "GET",
                &format!("/_ops/sns/published?topic_arn={topic}"),
                None,
            )
            .unwrap()["published"]
            .as_array()
            .unwrap()
            .len()
    };
    let (instance, event) = world.launch();
    world.emulator.add_fault(
        json!({"service": "sns", "operation": "Publish", "kind": "error500", "on_calls": [1], "times": 1}),
    );

    // When: the launch is handled (once the action is completed, no redelivery could alert it).
    let answer = function_handler(event.clone(), &deps).await.unwrap();

    // Then: completed, and alerted once: the failed Publish was tried again.
    assert_eq!(answer["result"], "CONTINUE", "{answer:#}");
    assert_eq!(world.emulator.faults_fired(), 1);
    assert_eq!(published(), 1);
    let again = function_handler(event, &deps).await.unwrap();
    assert_eq!(again["status"], "already_completed", "{again:#}");
    assert_eq!(published(), 1, "a redelivery says nothing more");
    assert_eq!(world.result_of(&instance).as_deref(), Some("CONTINUE"));
}

#[tokio::test]
async fn a_takeover_that_fails_after_freeing_the_address_alerts_whose_address_it_was() {
    // Given: the pool's only address on a stopped bastion, and a launch whose association fails
    // after it freed the address (the model's sequence: World { groups: 1, pool: 1 }, Launch,
    // Stop 0, Launch with its 6th AWS call failing).
    let mut world = World::new(1).await;
    world.give(&world.first).await;
    world.stop(&world.first).await;
    world.one_attempt().await;
    let (instance, event) = world.launch();
    world.emulator.add_fault(json!({"service": "ec2", "operation": "AssociateAddress", "kind": "error500", "on_calls": [1], "times": 1}));

    // When: the first delivery fails after freeing the address, and Lambda delivers it again.
    let error = world
        .handle(event.clone())
        .await
        .expect_err("the association failed");
    assert!(error.retryable(), "{error}");
    assert_eq!(
        world.holders().await,
        vec![None],
        "freed from the stopped bastion"
    );
    let again = world.handle(event).await.unwrap();

    // Then: the address is on the new bastion, and ops were told it left the stopped one (the
    // address itself no longer says so: the redelivery saw it free).
    assert_eq!(again["result"], "CONTINUE", "{again:#}");
    assert_eq!(again["secured"]["outcome"], "associated", "{again:#}");
    assert_eq!(world.holders().await, vec![Some(instance.clone())]);
    let sent = world.deps.alerts.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[0].event_type, "eip.freed");
    assert_eq!(sent[0].severity, Severity::Warning);
    assert_eq!(sent[0].context["taken_from"], world.first);
    assert!(
        sent[0].title.ends_with(&format!(
            "freed from {} (stopped) for {instance}",
            world.first
        )),
        "{}",
        sent[0].title
    );
    assert!(sent[0].why.contains("then failed"), "{}", sent[0].why);
    assert_eq!(sent[1].event_type, "eip.associated");
    assert_eq!(sent[1].context["launch_result"], "CONTINUE");
}

#[tokio::test]
async fn a_takeover_whose_completion_fails_is_alerted_before_the_launch_is_retried() {
    // Given: the pool's only address on a stopped bastion, and a launch that takes it over and
    // then fails at CompleteLifecycleAction.
    let mut world = World::new(1).await;
    world.give(&world.first).await;
    world.stop(&world.first).await;
    world.one_attempt().await;
    let (instance, event) = world.launch();
    world.emulator.add_fault(json!({"service": "autoscaling", "operation": "CompleteLifecycleAction", "kind": "error500", "on_calls": [1], "times": 1}));

    // When
    let error = world
        .handle(event.clone())
        .await
        .expect_err("the completion failed");
    assert!(error.retryable(), "{error}");
    let again = world.handle(event).await.unwrap();

    // Then: the takeover was told by the run that made it; the retry tells the launch.
    assert_eq!(again["result"], "CONTINUE", "{again:#}");
    assert_eq!(again["secured"]["outcome"], "already_held", "{again:#}");
    let sent = world.deps.alerts.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[0].event_type, "eip.taken-over");
    assert_eq!(sent[0].context["taken_from"], world.first);
    assert!(!sent[0].context.contains_key("launch_result"));
    assert!(sent[0].why.contains("then failed"), "{}", sent[0].why);
    assert_eq!(sent[1].event_type, "eip.associated");
    assert_eq!(sent[1].context["launch_result"], "CONTINUE");
    assert_eq!(world.holders().await, vec![Some(instance)]);
}

#[tokio::test]
async fn a_launch_whose_instance_is_terminated_while_it_associates_is_abandoned_not_failed() {
    // Given: a launch held at the hook, and its AssociateAddress held back.
    let world = World::new(1).await;
    let (instance, event) = world.launch();
    world.emulator.reset_calls();
    world.emulator.add_fault(json!({"service": "ec2", "operation": "AssociateAddress", "kind": "latency", "latency_ms": 1000, "on_calls": [1]}));

    // When: the instance is terminated while the association is on its way (EC2 then refuses
    // it: IncorrectInstanceState).
    let terminate = async {
        for waited in 0.. {
            if world.calls("AssociateAddress") > 0 {
                break;
            }
            assert!(waited < 500, "no AssociateAddress within 10 s");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        world.terminate(&instance).await;
    };
    let (answer, ()) = tokio::join!(world.handle(event), terminate);

    // Then: the launch is abandoned with the reason, not failed with EC2's error.
    let answer = answer.unwrap();
    assert_eq!(answer["result"], "ABANDON", "{answer:#}");
    assert_eq!(answer["secured"]["outcome"], "instance_gone", "{answer:#}");
    assert_eq!(answer["secured"]["state"], "terminated", "{answer:#}");
    assert_eq!(world.result_of(&instance).as_deref(), Some("ABANDON"));
    assert_eq!(world.holders().await, vec![None]);
    let sent = world.deps.alerts.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].event_type, "eip.launch-abandoned");
}

#[tokio::test]
async fn a_reconcile_repair_whose_read_back_fails_is_alerted_by_the_run_that_made_it_and_not_again()
{
    // Given: an in-service bastion without an address, and the reconcile's read-back of the
    // association it makes failing (the model's sequence: World { groups: 2, pool: 1, initial:
    // [true, false] }, Tick with its 9th AWS call failing, Launch).
    let mut world = World::new(1).await;
    world.one_attempt().await;
    world.emulator.add_fault(json!({"service": "ec2", "operation": "DescribeAddresses", "kind": "error500", "on_calls": [4], "times": 1}));

    // When: the tick fails after EC2 accepted the association, and Lambda delivers it again.
    let error = world
        .handle(scheduled(1_795_000_000))
        .await
        .expect_err("the read-back failed");
    assert!(error.retryable(), "{error}");
    assert_eq!(world.emulator.faults_fired(), 1);
    let again = world.handle(scheduled(1_795_000_000)).await.unwrap();

    // Then: the bastion holds the address; the repair was alerted once, by the run that made it
    // (the redelivery finds it already held and says nothing).
    assert_eq!(again["repaired"], json!([]), "{again:#}");
    assert_eq!(world.holders().await, vec![Some(world.first.clone())]);
    let sent = world.deps.alerts.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].event_type, "eip.drift-repaired");
    assert!(
        sent[0].why.contains("then reading it back failed"),
        "{}",
        sent[0].why
    );
}
