"""What the redeemer does, one job per module: a scan (scanner.py, then live.py or
requests.py or tokens.py), a join (joins.py), a decision on a request (requests.py), a
departure (members.py), an erasure (erasure.py). Each reads, asks the domain's rules, and
writes its decision with its event in one transaction."""
