"""Server-side printing of `kubectl get`: Tables (`convertor`), built-in kinds' printers
(`printers`), their columns (`columns`) and how cells print values (`format`)."""
