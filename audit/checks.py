"""The cascade is declared on the models; this check keeps the declarations complete."""

from django.core.checks import Error, register


@register()
def check_cascade_declared(app_configs, **kwargs):
    from audit.deletion import cascade_edges, clinical_models

    problems = []
    for model in clinical_models():
        declared = set(model.hidden_with) | set(model.not_hidden_with)
        for field in model._meta.concrete_fields:
            target = field.related_model if field.is_relation else None
            if target is None or field.name == "deletion" or target not in clinical_models():
                continue
            if field.name not in declared:
                problems.append(Error(
                    f"{model._meta.label}.{field.name} points at a clinical record but is in neither "
                    "hidden_with nor not_hidden_with.",
                    hint="Add it to hidden_with so that deleting its target hides this row too.",
                    obj=model, id="audit.E001",
                ))
    try:
        cascade_edges()
    except RuntimeError as exc:
        problems.append(Error(str(exc), id="audit.E003"))
    return problems
