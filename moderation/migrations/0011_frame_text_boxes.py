from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('moderation', '0010_review_reason_code'),
    ]

    operations = [
        migrations.AddField(
            model_name='frame',
            name='text_boxes',
            field=models.JSONField(blank=True, default=list, verbose_name='text boxes'),
        ),
    ]
