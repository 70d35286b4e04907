"""The admission webhook's server side: AdmissionReview v1 over HTTPS, fail closed.

It decides nothing itself: `server.create_app` is handed a decider (`auditor.admit.Decider`,
which reuses the provenance and policy stages for one object) and keeps the time budget,
answers, and records every decision. `serve.serve` runs it under uvicorn.
"""
