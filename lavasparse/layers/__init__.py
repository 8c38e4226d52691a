"""What a layer kind is, in one place, below every stage: train, export,
deploy and simulate all import from here, and this package imports none of
them (numpy only, so that reading or checking a network never loads torch).
"""
