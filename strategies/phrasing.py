"""What the suggestions say: example phrasings, what to watch for, and the words used
for markers and signals in rationales.

Written for this project (no third-party text). Kept apart from ``rules.py`` so a
clinician can review the wording without reading the scoring table, and the other
way round. Situation-specific phrasings live on the rules themselves; these are the
defaults used when no rule offers a better fit.
"""

from ruptures import vocabulary

# One utterance a therapist could actually say; plain, warm, leaving room to disagree.
EXAMPLES = {
    "clarify_misunderstanding": (
        "Can I pause us for a moment? I have a feeling that what I said landed differently "
        "from how I meant it. Would you tell me what you heard? Then I'll try to say it "
        "more clearly, and you can tell me if it still doesn't fit."
    ),
    "provide_rationale": (
        "I don't think I explained why I suggested this, and that's a fair thing to want "
        "to know. Let me say how I hope it will help, and then I'd really like to hear "
        "whether it makes sense to you."
    ),
    "change_tasks_goals": (
        "It sounds like this doesn't feel right for you, and I'd rather we find something "
        "that does than push on with it. What would feel more useful to work on, or is "
        "there a version of this that would fit you better?"
    ),
    "validate_defensive_posture": (
        "It makes sense that you'd be wary of this. You don't know yet whether it will "
        "help, and you have every right to hold back until it feels right. We don't have "
        "to go there until you're ready."
    ),
    "redirect_refocus": (
        "I notice we've moved a little away from what you said you wanted to focus on "
        "today. Is it all right if we come back to it, or does this feel more important "
        "right now?"
    ),
    "invite_discussion": (
        "I wonder how this is feeling for you right now, here with me. Things can happen "
        "between us that are hard to say out loud, and I'd genuinely like to hear them, "
        "including anything I've done that hasn't felt right."
    ),
    "acknowledge_contribution": (
        "Looking back, I think I pushed my own idea harder than I needed to, and I'm sorry "
        "for that. What was it like for you when I did?"
    ),
    "disclose_internal_experience": (
        "Can I share something I'm noticing? As we've been talking I've been feeling a bit "
        "further away from you, and I'm not sure why. I wonder whether you're feeling "
        "something similar?"
    ),
    "link_to_session_pattern": (
        "I've noticed something that seems to come up between us now and then, and I "
        "wonder if today is another time. Could we look at it together: what happens for "
        "you, and what I might be doing that's part of it?"
    ),
    "link_to_outside_pattern": (
        "I'm wondering whether what's happening between us right now is a bit like what "
        "you've described with other people in your life. Does it feel at all familiar?"
    ),
    "new_relational_experience": (
        "(Rather than defending or pulling back, stay warm and curious.) \"I'm really glad "
        'you told me that. It helps me understand what you need from our work."'
    ),
}

WATCH_FOR = {
    "clarify_misunderstanding": (
        "Whether the client settles once the misunderstanding is named; if the upset "
        "stays, it is about more than the words, so invite discussion."
    ),
    "provide_rationale": (
        'Compliance without agreement (nodding, "fine"): a rationale can sound like a '
        "defence, so check that the client feels free to disagree."
    ),
    "change_tasks_goals": (
        "Whether the client shapes the new task with you; if they accept whatever you "
        "propose, the rupture may have turned into withdrawal."
    ),
    "validate_defensive_posture": (
        "Whether the client softens and re-engages; keep the door open to come back to "
        "the topic later, without pressure."
    ),
    "redirect_refocus": (
        "Whether the drift returns; if it does, it is a rupture to explore rather than "
        "steer around."
    ),
    "invite_discussion": (
        "A polite \"it's fine\" or a quick change of subject; don't press, say the door "
        "stays open, and come back to it next session."
    ),
    "acknowledge_contribution": (
        "Your own pull to over-apologise or explain yourself; keep the focus on the "
        "client's experience, and take what happened to supervision."
    ),
    "disclose_internal_experience": (
        "That the disclosure stays brief and about the two of you, and whether it frees "
        "the client to speak or leaves them looking after you."
    ),
    "link_to_session_pattern": (
        "Whether the client hears curiosity or criticism; name your own part in the "
        "pattern so that it stays shared work."
    ),
    "link_to_outside_pattern": (
        "Whether the link deepens the work or takes it away from what is happening "
        "between you now; come back to the here and now if it turns intellectual."
    ),
    "new_relational_experience": (
        "Whether the client's expectation of being criticised, rejected or controlled "
        "loosens over the next sessions, and what they do when it is not confirmed."
    ),
}

# Rationales read "<phrase> did not help the last two times".
TRIED_PHRASES = {
    "clarify_misunderstanding": "clarifying the misunderstanding",
    "provide_rationale": "explaining the rationale",
    "change_tasks_goals": "revising the task",
    "validate_defensive_posture": "validating the client's reluctance",
    "redirect_refocus": "returning to the agreed focus",
    "invite_discussion": "inviting them to talk about the relationship",
    "acknowledge_contribution": "owning your part",
    "disclose_internal_experience": "disclosing what you noticed in yourself",
    "link_to_session_pattern": "linking it to a pattern between you",
    "link_to_outside_pattern": "linking it to patterns outside therapy",
    "new_relational_experience": "responding against the client's expectation",
}

# Rationales read "the client <phrase>", so each phrase is what was seen, past tense.
MARKER_PHRASES = {
    "denial": "denied a feeling that was evident in the room",
    "minimal_response": "fell silent or gave minimal answers",
    "abstract_communication": "talked in vague or intellectualised terms",
    "avoidant_storytelling": "told long stories that led away from the issue",
    "topic_shift": "changed the subject",
    "deferential_appeasing": "agreed too readily",
    "content_affect_split": "showed feelings that did not match the words",
    "self_criticism_hopelessness": "turned to self-criticism or hopelessness",
    "complaint_about_therapist": "complained about you",
    "rejects_intervention": "rejected what you offered",
    "complaint_about_activities": "complained about the tasks of therapy",
    "complaint_about_parameters": "complained about the frame",
    "complaint_about_progress": "complained about progress or goals",
    "defends_self": "defended themself against your remarks",
    "control_pressure": "tried to control or pressure you",
}

# Rationales read "you felt <phrase>"; the vocabulary labels already read that way.
SIGNAL_PHRASES = {slug: label.lower() for slug, label in vocabulary.INTERNAL_SIGNALS}
