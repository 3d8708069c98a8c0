"""The data contract and everything that reads or checks a data set or a log line."""
