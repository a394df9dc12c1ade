wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyZWFkZXIiLCJlbWFpbCI6InJlYWRlckBleGFtcGxlLmNvbSIsIm5hbWUiOiJCZW5jaCIsImV4cCI6MTc5NjU2MTQ5NH0.fsjIgqqRyAhormsxipTz3K3TwCi1D9y5TfVnKEhCquE"
wrk.headers["Content-Type"] = "application/json"
