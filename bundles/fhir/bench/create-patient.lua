-- wrk script: every request creates a Patient (a journaled, fsync'd write).
wrk.method = "POST"
wrk.path = "/Patient"
wrk.headers["Content-Type"] = "application/fhir+json"
wrk.body = '{"resourceType":"Patient","name":[{"family":"Bench","given":["Load"]}],"birthDate":"1990-01-01"}'
