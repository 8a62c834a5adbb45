"""Elastic IP addresses and instance termination as EC2 has them.

moto 5.2.5 keeps an Elastic IP associated with an instance after the instance is terminated, and
associates an address with a terminated instance when asked. EC2 does neither:

- Terminating an instance disassociates its Elastic IP addresses (they stay allocated to the
  account): Amazon EC2 User Guide, "Elastic IP addresses"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/elastic-ip-addresses-eip.html) and the
  table of instance state differences in "Amazon EC2 instance state changes"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html: terminate, "The
  Elastic IP address is disassociated from the instance"; stop, it "remains associated").
- AssociateAddress with an instance that is shutting down or terminated fails with
  ``IncorrectInstanceState`` and changes nothing: Amazon EC2 API Reference, "AssociateAddress"
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AssociateAddress.html) and "Error codes
  for the Amazon EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html,
  ``IncorrectInstanceState``: the instance is in a state in which the request cannot be done).

- StopInstances on a terminated (or shutting-down) instance fails with ``IncorrectInstanceState``
  and leaves it terminated (moto marks it ``stopped``): Amazon EC2 API Reference, "StopInstances"
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StopInstances.html) and the error
  codes page above.

A stopped instance keeps its address and can still be given one, as in EC2.
"""

from __future__ import annotations

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
from moto.ec2.models.instances import Instance

#: Instance states in which EC2 refuses to associate an address.
GONE_STATES = ("shutting-down", "terminated")


class IncorrectInstanceState(EC2ClientError):
    """EC2's answer to a request the instance's state does not allow."""

    def __init__(self, message: str) -> None:
        super().__init__("IncorrectInstanceState", message)


def _addresses_of(instance) -> list:
    """Every Elastic IP associated with `instance` or one of its network interfaces."""
    nics = {id(nic) for nic in instance.nics.values()}
    return [
        eip
        for eip in instance.ec2_backend.addresses
        if eip.instance is instance or (eip.eni is not None and id(eip.eni) in nics)
    ]


def install() -> None:
    """Patch moto: termination frees addresses; associating with or stopping a gone instance fails."""
    if getattr(Instance.terminate, "_ops_patched", False):
        return
    terminate = Instance.terminate
    stop = Instance.stop
    associate = ElasticAddressBackend.associate_address

    def terminate_and_free_addresses(self):
        held = _addresses_of(self)
        previous = terminate(self)
        for eip in held:
            if eip.eni is not None:
                eip.eni.public_ip = None
            eip.eni = None
            eip.instance = None
            eip.association_id = None
        return previous

    def stop_unless_gone(self):
        if self._state.name in GONE_STATES:
            raise IncorrectInstanceState(
                f"This instance '{self.id}' is not in a state from which it can be stopped."
            )
        return stop(self)

    def associate_only_with_live_instances(self, instance=None, eni=None, *args, **kwargs):
        target = instance if instance is not None else getattr(eni, "instance", None)
        if target is not None and target._state.name in GONE_STATES:
            raise IncorrectInstanceState(
                f"The instance '{target.id}' is not in a valid state for this operation."
            )
        return associate(self, instance, eni, *args, **kwargs)

    terminate_and_free_addresses._ops_patched = True  # type: ignore[attr-defined]
    Instance.terminate = terminate_and_free_addresses
    Instance.stop = stop_unless_gone
    ElasticAddressBackend.associate_address = associate_only_with_live_instances
