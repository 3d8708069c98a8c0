"""Pure statistics shared by stages that may not import each other (gate, monitoring)."""
