# METADATA
# title: Runtime image changes are announced
# description: >-
#   On an UPDATE (admission only: it reads the review's oldObject), a model server whose first
#   container changes image gets a warning naming both images.
# custom:
#   severity: low
package tests.admission.runtime_change

import rego.v1

image(obj) := obj.spec.template.spec.containers[0].image

warn contains msg if {
	input.context == "admission"
	input.request.operation == "UPDATE"
	old := image(input.request.oldObject)
	new := image(input.resource)
	old != new
	msg := sprintf("runtime image changes from %s to %s", [old, new])
}
