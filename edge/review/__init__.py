"""The therapists' review page on the appliance: staff accounts, the sessions a person may see, the
session's report in the browser, filing it to the clinic's record (HL7 FHIR), erasure on request and
the access log. Per-session data never leaves the room except as a person files it."""
