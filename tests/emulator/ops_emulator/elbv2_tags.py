"""ELBv2 tag quota as AWS has it: 50 tags per load balancer, listener, rule or target group.

moto 5.2.5 refuses an eleventh tag; blue-green-swapper keeps its contract and its state in listener
and rule tags beside the owner's own, which an account outgrows at ten.
"""

from __future__ import annotations

from moto.elbv2.exceptions import TooManyTagsError
from moto.elbv2.models import ELBv2Backend

MAX_TAGS = 50


def install() -> None:
    """Patch moto's AddTags to enforce AWS's quota instead of ten."""
    if getattr(ELBv2Backend.add_tags, "_ops_patched", False):
        return

    def add_tags(self, resource_arns, tags):
        tag_dict = self.tagging_service.flatten_tag_list(tags)
        for arn in resource_arns:
            self._get_resource_by_arn(arn)
            existing = self.tagging_service.get_tag_dict_for_resource(arn)
            if len(set(existing) | set(tag_dict)) > MAX_TAGS:
                raise TooManyTagsError()
            self.tagging_service.tag_resource(arn, tags)

    add_tags._ops_patched = True  # type: ignore[attr-defined]
    ELBv2Backend.add_tags = add_tags
